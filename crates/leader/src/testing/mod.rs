//! Test support, for tests only: an in-process fake of the Kubernetes API server's Lease routes
//! (the polling helper is `testkit::eventually`). Enabled by the `testing` feature; never
//! enable it in a production build.
//!
//! No Kubernetes API server can run in CI (`leader.md` §12), so election tests drive real
//! `kube::Client`s against [`FakeApi`], which speaks the real Lease REST protocol and has fault
//! knobs. A test in another crate can point a spawned binary at it with
//! [`FakeApi::write_kubeconfig`] and `KUBECONFIG=<file>`. Panics here are test failures.

mod fake_api;

pub use fake_api::{Entry, FakeApi, Partition};
