//! Running a scheduler's work only while this process leads, and stopping it when the term ends.

use std::future::Future;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::handle::LeaderState;

/// One term of leadership, handed to guarded work.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// The term (the Lease's `leaseTransitions`). Stamp every result with it, so the sink can
    /// refuse a write from an older term (see `docs/fencing.md`).
    pub term: i64,
    /// Cancelled when the term ends. Check it between batches and `select!` long I/O against
    /// `token.cancelled()`.
    pub token: CancellationToken,
}

/// Runs `work` for each term this process leads, until `shutdown` is cancelled or the elector
/// stops.
///
/// - `work(leadership)` starts when the state becomes `Leading`. When the term's token is
///   cancelled (deadline missed, Lease lost, elector shutting down) the work future is
///   **dropped at once**, which is no later than the renew deadline and so before any other
///   replica may take over (LeaseDuration > RenewDeadline). The token is also passed in, for
///   work that hands parts of itself to other tasks.
/// - If `work` returns while the term is still running, it is not restarted until the next
///   term: a scheduler's work is normally a loop that only ends when cancelled.
/// - When this returns, the work has stopped, so the caller may then call
///   [`crate::ElectorHandle::shutdown`] to release the Lease: releasing while the work still
///   runs would let a follower start a second worker.
///
/// Work must yield (await) regularly to be dropped promptly; move CPU-heavy steps to
/// `spawn_blocking` and check the token around them.
pub async fn run_while_leading<F, Fut>(
    mut states: watch::Receiver<LeaderState>,
    shutdown: CancellationToken,
    mut work: F,
) where
    F: FnMut(Leadership) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let state = states.borrow_and_update().clone();
        if let LeaderState::Leading { term, token } = state
            && !token.is_cancelled()
        {
            let leadership = Leadership {
                term,
                token: token.clone(),
            };
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                () = token.cancelled() => {}
                () = work(leadership) => {
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled() => return,
                        () = token.cancelled() => {}
                    }
                }
            }
            // The term is over; the next state (maybe already published) decides what follows.
            continue;
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            changed = states.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    fn leading(term: i64) -> (LeaderState, CancellationToken) {
        let token = CancellationToken::new();
        (
            LeaderState::Leading {
                term,
                token: token.clone(),
            },
            token,
        )
    }

    /// Work that records its term at start and at drop (end), then runs until dropped.
    fn recording_work(
        log: Arc<Mutex<Vec<String>>>,
    ) -> impl FnMut(Leadership) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        move |l: Leadership| {
            let log = log.clone();
            Box::pin(async move {
                struct OnDrop(Arc<Mutex<Vec<String>>>, i64);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        self.0.lock().expect("lock").push(format!("end {}", self.1));
                    }
                }
                log.lock().expect("lock").push(format!("start {}", l.term));
                let _guard = OnDrop(log.clone(), l.term);
                std::future::pending::<()>().await;
            })
        }
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    /// Polls until the log equals `expected`, failing after a generous bound.
    async fn log_becomes(log: &Arc<Mutex<Vec<String>>>, expected: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if *log.lock().expect("lock") == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "log is {:?}, expected {expected:?}",
                log.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn work_runs_per_term_and_is_dropped_when_the_token_is_cancelled() {
        let (tx, rx) = watch::channel(LeaderState::Unknown);
        let shutdown = CancellationToken::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(run_while_leading(
            rx,
            shutdown.clone(),
            recording_work(log.clone()),
        ));
        settle().await;
        assert!(log.lock().expect("lock").is_empty());

        let (state, token) = leading(4);
        tx.send_replace(state);
        log_becomes(&log, &["start 4"]).await;

        token.cancel();
        log_becomes(&log, &["start 4", "end 4"]).await;

        tx.send_replace(LeaderState::Following { holder: None });
        let (state, _token) = leading(5);
        tx.send_replace(state);
        log_becomes(&log, &["start 4", "end 4", "start 5"]).await;

        shutdown.cancel();
        task.await.expect("no panic");
        assert_eq!(
            *log.lock().expect("lock"),
            ["start 4", "end 4", "start 5", "end 5"]
        );
    }

    #[tokio::test]
    async fn returns_when_the_elector_stops() {
        let (tx, rx) = watch::channel(LeaderState::Unknown);
        let task = tokio::spawn(run_while_leading(rx, CancellationToken::new(), |_| async {}));
        drop(tx);
        task.await.expect("returns");
    }

    #[tokio::test]
    async fn finished_work_is_not_restarted_within_the_same_term() {
        let (tx, rx) = watch::channel(LeaderState::Unknown);
        let runs = Arc::new(Mutex::new(0));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_while_leading(rx, shutdown.clone(), {
            let runs = runs.clone();
            move |_| {
                *runs.lock().expect("lock") += 1;
                async {}
            }
        }));
        let (state, _token) = leading(1);
        tx.send_replace(state);
        settle().await;
        settle().await;
        assert_eq!(*runs.lock().expect("lock"), 1);
        shutdown.cancel();
        task.await.expect("returns");
    }
}
