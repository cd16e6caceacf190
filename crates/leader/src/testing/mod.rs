//! Test support, for tests only: an in-process fake of the Kubernetes API server's Lease routes
//! and a polling helper. Enabled by the `testing` feature; never enable it in a production build.
//!
//! No Kubernetes API server can run in CI (`leader.md` §12), so election tests drive real
//! `kube::Client`s against [`FakeApi`], which speaks the real Lease REST protocol and has fault
//! knobs. A test in another crate can point a spawned binary at it with
//! [`FakeApi::write_kubeconfig`] and `KUBECONFIG=<file>`. Panics here are test failures.

mod fake_api;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use fake_api::{Entry, FakeApi, Partition};

/// Polls `probe` every 25 ms until it yields `Some`, or fails the test after `within`.
///
/// # Panics
/// When `within` passes without `probe` yielding `Some` (that is the test failing).
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    within: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
