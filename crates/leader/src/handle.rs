//! What a caller holds: the published leadership state and the handle to a running elector.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// What this process knows about the leadership of its Lease.
#[derive(Clone, Debug)]
pub enum LeaderState {
    /// Nothing observed yet, or the API server is unreachable while we are not leading.
    Unknown,
    /// Someone else holds the Lease (`Some(identity)`), or nobody does (`None`).
    Following {
        /// The current holder's identity, if any.
        holder: Option<String>,
    },
    /// The deployment is wrong and the election cannot proceed until an operator fixes it:
    /// RBAC denies us (403), our credentials are rejected (401), or the Lease's namespace does
    /// not exist. Not leading; the elector keeps retrying every RetryPeriod.
    Misconfigured {
        /// What failed, with the API server's code and message, for readiness and logs.
        problem: String,
    },
    /// We hold the Lease.
    Leading {
        /// The term: the Lease's `leaseTransitions` when we acquired it. Stamp writes with it so
        /// the sink can reject an older term (see `docs/fencing.md`).
        term: i64,
        /// Cancelled when this term ends, *before* the state leaves `Leading`. The source of
        /// truth for "may I still work" (a `watch` receiver can miss states).
        token: CancellationToken,
    },
}

impl LeaderState {
    /// Whether this is `Leading` with a token that is not cancelled yet.
    pub fn is_leading(&self) -> bool {
        matches!(self, Self::Leading { token, .. } if !token.is_cancelled())
    }

    /// The term, if leading.
    pub fn term(&self) -> Option<i64> {
        match self {
            Self::Leading { term, .. } => Some(*term),
            _ => None,
        }
    }

    /// Same state for logging purposes: tokens are not compared, terms are.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unknown, Self::Unknown) => true,
            (Self::Following { holder: a }, Self::Following { holder: b }) => a == b,
            (Self::Misconfigured { problem: a }, Self::Misconfigured { problem: b }) => a == b,
            (Self::Leading { term: a, .. }, Self::Leading { term: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// Shared between the election task and the handle. The lock is never held across an `.await`,
/// so a std mutex is right.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// When our last successful renew was sent, while we lead.
    last_renew: Mutex<Option<Instant>>,
    /// RenewDeadline − margin: how long after a renew was sent writes stay allowed. `None` in
    /// local mode, where there is no Lease and so no deadline.
    valid_for: Option<Duration>,
}

/// The part of RenewDeadline kept back from writers: a quarter of it, at most one second. The
/// leader steps down at RenewDeadline; stopping writes earlier leaves room for the last write's
/// round trip and for clock-rate differences.
pub(crate) fn write_margin(renew_deadline: Duration) -> Duration {
    (renew_deadline / 4).min(Duration::from_secs(1))
}

impl Health {
    /// The shared state of a Lease election with this RenewDeadline.
    pub(crate) fn new(renew_deadline: Duration) -> Health {
        Health {
            last_renew: Mutex::new(None),
            valid_for: Some(renew_deadline.saturating_sub(write_margin(renew_deadline))),
        }
    }

    pub(crate) fn set(&self, value: Option<Instant>) {
        if let Ok(mut guard) = self.last_renew.lock() {
            *guard = value;
        }
    }

    fn get(&self) -> Option<Instant> {
        self.last_renew.lock().ok().and_then(|g| *g)
    }
}

/// Until when this replica may write as the leader: the last renew sent + RenewDeadline −
/// margin. A sink refuses any write after it and bounds each operation's server time by what is
/// left, so no write of this term can land after another replica may have taken over (which
/// needs LeaseDuration > RenewDeadline to pass first). Cheap to clone; reads the live value.
#[derive(Clone, Debug)]
pub struct WriteDeadline {
    health: Arc<Health>,
}

impl WriteDeadline {
    /// The instant writes must stop, or `None` while this replica does not lead.
    pub fn valid_until(&self) -> Option<Instant> {
        let valid_for = self.health.valid_for?;
        self.health.get().map(|sent| sent + valid_for)
    }
}

/// A running elector. Dropping it stops the election (and releases the Lease) in the
/// background; prefer [`ElectorHandle::shutdown`], which waits for that.
#[derive(Debug)]
pub struct ElectorHandle {
    pub(crate) identity: String,
    pub(crate) lease_name: String,
    pub(crate) lease_duration: Duration,
    pub(crate) states: watch::Receiver<LeaderState>,
    pub(crate) stop: CancellationToken,
    pub(crate) health: Arc<Health>,
    pub(crate) task: Option<JoinHandle<Result<(), Error>>>,
}

impl ElectorHandle {
    /// A receiver of state changes. Schedulers check it before every cycle and pass the term
    /// and token into the cycle (or use [`crate::run_while_leading`]).
    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.states.clone()
    }

    /// The current state.
    pub fn state(&self) -> LeaderState {
        self.states.borrow().clone()
    }

    /// Our `holderIdentity`: log it at startup and show it in readiness.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The Lease this elector competes for.
    pub fn lease_name(&self) -> &str {
        &self.lease_name
    }

    /// The write deadline of this elector's terms, or `None` in local mode
    /// (`LEADER_ELECTION=disabled`: no Lease, so nothing to expire).
    pub fn write_deadline(&self) -> Option<WriteDeadline> {
        self.health.valid_for.map(|_| WriteDeadline {
            health: self.health.clone(),
        })
    }

    /// Watchdog for a liveness endpoint (client-go's `HealthzAdaptor`): false if we claim to
    /// lead but our last successful renew is older than LeaseDuration + `max_tolerable`, i.e.
    /// the election loop is stuck while others may already have taken over.
    pub fn is_healthy(&self, max_tolerable: Duration) -> bool {
        match self.health.get() {
            Some(last) => last.elapsed() <= self.lease_duration + max_tolerable,
            None => true,
        }
    }

    /// Stops the election: ends the current term (its token is cancelled) and, if configured
    /// and our latest observation says we still hold the Lease, releases it so a follower takes
    /// over at its next attempt instead of after a full LeaseDuration.
    ///
    /// Call it only **after** the guarded work has stopped; releasing earlier lets two
    /// processes work at once.
    ///
    /// # Errors
    /// [`Error::Release`] if the release PUT failed (the Lease then expires normally), or
    /// [`Error::Task`] if the election task panicked.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await.map_err(Error::Task)?,
            None => Ok(()),
        }
    }

    /// Stops the election at once, without releasing the Lease: what a crash looks like to the
    /// other replicas, which take over only after the Lease expires. The current term's token
    /// is cancelled, as the work of a crashed process would be gone.
    pub fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for ElectorHandle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_with_cancelled_token_is_not_leading() {
        let token = CancellationToken::new();
        let state = LeaderState::Leading {
            term: 3,
            token: token.clone(),
        };
        assert!(state.is_leading());
        assert_eq!(state.term(), Some(3));
        token.cancel();
        assert!(!state.is_leading());
    }

    #[test]
    fn write_deadline_is_last_renew_plus_renew_deadline_minus_margin() {
        let health = Arc::new(Health::new(Duration::from_secs(10)));
        let deadline = WriteDeadline {
            health: health.clone(),
        };
        assert_eq!(deadline.valid_until(), None, "not leading");
        let sent = Instant::now();
        health.set(Some(sent));
        assert_eq!(deadline.valid_until(), Some(sent + Duration::from_secs(9)));
        health.set(None);
        assert_eq!(deadline.valid_until(), None, "stepped down");
        assert_eq!(
            write_margin(Duration::from_millis(600)),
            Duration::from_millis(150)
        );
        let local = WriteDeadline {
            health: Arc::new(Health::default()),
        };
        assert_eq!(local.valid_until(), None, "local mode has no deadline");
    }

    #[test]
    fn states_compare_by_holder_and_term_not_token() {
        let a = LeaderState::Leading {
            term: 1,
            token: CancellationToken::new(),
        };
        let b = LeaderState::Leading {
            term: 1,
            token: CancellationToken::new(),
        };
        assert!(a.same_as(&b));
        assert!(
            !LeaderState::Following { holder: None }.same_as(&LeaderState::Following {
                holder: Some("x".into())
            })
        );
        assert!(!LeaderState::Unknown.same_as(&a));
    }
}
