//! Test support, for tests only: an in-process fake of the Kubernetes API server's Lease routes,
//! and a handle on the real kube-apiserver that `make test-k8s` starts (the polling helper is
//! `testkit::eventually`). Enabled by the `testing` feature; never enable it in a production
//! build.
//!
//! Election tests drive real `kube::Client`s against [`FakeApi`], which speaks the real Lease
//! REST protocol and has fault knobs; the same tests run against [`RealApi`] under
//! `make test-k8s`, which is how the fake is kept honest. A test in another crate can point a
//! spawned binary at either with `write_kubeconfig` and `KUBECONFIG=<file>`. Panics here are
//! test failures.

mod fake_api;
mod real_api;
mod rules;
mod status;
mod store;

pub use fake_api::{Entry, FakeApi, Partition};
pub use real_api::{ChartRbac, KUBECONFIG_VAR, LeaseWatch, RealApi};
