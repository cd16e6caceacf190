//! The election loop: one task drives the state machine with Lease calls and publishes the state.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};

use crate::config::{ElectionConfig, ElectionMode, JITTER_FACTOR};
use crate::error::Error;
use crate::handle::{ElectorHandle, Health, LeaderState};
use crate::lease_api::{self, ApiError, LeaseApi};
use crate::metrics::{self, Transition};
use crate::state::{AcquirePlan, Election, LeaseRecord, Reconciled};

/// Renew PUTs per round: the first, plus one more when a re-read shows the Lease is still ours
/// but our write did not land (see `docs/leader-election.md`, "Ambiguous writes"). More would
/// only spin against a server that keeps refusing; the next round comes one RetryPeriod later,
/// still inside the deadline.
const MAX_RENEW_PUTS_PER_ROUND: usize = 2;

/// Starts an elector for `config`, building the election's own client from the environment
/// (in a pod: the in-cluster config). In [`ElectionMode::Disabled`] no client is built.
///
/// # Errors
/// [`Error::Config`] for an invalid config, [`Error::KubeConfig`] / [`Error::Client`] if no
/// client can be built.
///
/// # Panics
/// Outside a tokio runtime (it spawns the election task).
pub async fn start(config: ElectionConfig) -> Result<ElectorHandle, Error> {
    config.validate()?;
    if config.mode == ElectionMode::Disabled {
        return Ok(spawn_local(config));
    }
    let kube_config = kube::Config::infer().await.map_err(Error::KubeConfig)?;
    let client = lease_api::election_client(kube_config, config.api_timeout)?;
    spawn(client, config)
}

/// Starts an elector on `client`, which should come from [`crate::election_client`] (no
/// retries, timeouts set). In [`ElectionMode::Disabled`] the client is not used.
///
/// # Errors
/// [`Error::Config`] if the config breaks a rule of [`ElectionConfig::validate`].
///
/// # Panics
/// Outside a tokio runtime (it spawns the election task).
pub fn spawn(client: kube::Client, config: ElectionConfig) -> Result<ElectorHandle, Error> {
    config.validate()?;
    if config.mode == ElectionMode::Disabled {
        return Ok(spawn_local(config));
    }
    let api: Api<Lease> = match &config.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::default_namespaced(client),
    };
    let (tx, states) = watch::channel(LeaderState::Unknown);
    let stop = CancellationToken::new();
    let health = Arc::new(Health::new(config.renew_deadline));
    metrics::set_leader(&config.lease_name, false);
    metrics::set_misconfigured(&config.lease_name, false);
    let span = tracing::info_span!(
        "leader_election",
        lease = %config.lease_name,
        identity = %config.identity,
    );
    info!(parent: &span, "starting leader election");
    let runner = Runner {
        api: LeaseApi::new(api, config.lease_name.clone()),
        election: Election::new(
            config.identity.clone(),
            config.lease_duration,
            config.renew_deadline,
        ),
        meta: ObjectMeta::default(),
        tx,
        token: None,
        health: health.clone(),
        config: config.clone(),
    };
    let task = tokio::spawn(runner.run(stop.clone()).instrument(span));
    Ok(ElectorHandle {
        identity: config.identity,
        lease_name: config.lease_name,
        lease_duration: config.lease_duration,
        states,
        stop,
        health,
        task: Some(task),
    })
}

/// Local mode: leads at once with term 0 until shut down.
fn spawn_local(config: ElectionConfig) -> ElectorHandle {
    warn!(
        lease = %config.lease_name,
        identity = %config.identity,
        "LEADER_ELECTION=disabled: leading without a Lease; run exactly one replica"
    );
    let token = CancellationToken::new();
    let (tx, states) = watch::channel(LeaderState::Leading {
        term: 0,
        token: token.clone(),
    });
    metrics::set_leader(&config.lease_name, true);
    let stop = CancellationToken::new();
    let lease = config.lease_name.clone();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            token.cancel();
            tx.send_replace(LeaderState::Unknown);
            metrics::set_leader(&lease, false);
            Ok(())
        }
    });
    ElectorHandle {
        identity: config.identity,
        lease_name: config.lease_name,
        lease_duration: config.lease_duration,
        states,
        stop,
        health: Arc::new(Health::default()),
        task: Some(task),
    }
}

/// Why we stopped leading.
#[derive(Clone, Copy, Debug)]
enum StepDown {
    /// No renew succeeded within RenewDeadline.
    DeadlineMissed,
    /// A re-read showed the Lease is no longer ours.
    LeaseLost,
    /// Shutdown was requested.
    Shutdown,
}

impl StepDown {
    const fn as_str(self) -> &'static str {
        match self {
            Self::DeadlineMissed => "no successful renew within the renew deadline",
            Self::LeaseLost => "the Lease was taken over or removed",
            Self::Shutdown => "shutdown",
        }
    }
}

/// The election task's state. The only owner of the state machine, so no other task can change
/// the election's view of who leads.
struct Runner {
    config: ElectionConfig,
    api: LeaseApi,
    election: Election,
    /// Metadata of the last Lease object read or written, reused in PUT bodies.
    meta: ObjectMeta,
    tx: watch::Sender<LeaderState>,
    /// The current term's token, while leading.
    token: Option<CancellationToken>,
    health: Arc<Health>,
}

impl Runner {
    async fn run(mut self, stop: CancellationToken) -> Result<(), Error> {
        loop {
            let wait = if self.election.term().is_some() {
                self.renew_round().await
            } else {
                self.acquire_round().await
            };
            if stop.is_cancelled() {
                break;
            }
            let mut wake = Instant::now() + wait;
            // A leader wakes at its deadline at the latest, so it steps down on time even when
            // the last call failed fast.
            if let Some(deadline) = self.election.deadline() {
                wake = wake.min(deadline);
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(wake) => {}
            }
        }
        self.finish().await
    }

    /// One follower attempt: read the Lease, then create it, take it over or keep following, as
    /// the state machine decides. Returns the wait before the next.
    async fn acquire_round(&mut self) -> Duration {
        let timeout = self.config.api_timeout;
        let read = match self.api.get(timeout).await {
            Ok(read) => read,
            Err(e) => {
                self.attempt_failed("get", &e);
                return self.follower_wait();
            }
        };
        let read = read.map(|lease| self.adopt(lease));
        self.election.observe(read, Instant::now());
        match self.election.plan_acquire(Instant::now(), Timestamp::now()) {
            AcquirePlan::Follow { holder } => {
                self.publish(LeaderState::Following {
                    holder: Some(holder),
                });
            }
            AcquirePlan::Create(record) => {
                let sent = Instant::now();
                let result = self.api.create(&record, timeout).await;
                self.after_acquire_write("create", result, sent);
            }
            AcquirePlan::Update {
                record,
                resource_version,
            } => {
                let sent = Instant::now();
                let result = self
                    .api
                    .replace(&self.meta, &record, &resource_version, timeout)
                    .await;
                self.after_acquire_write("update", result, sent);
            }
        }
        if self.election.term().is_some() {
            self.config.retry_period
        } else {
            self.follower_wait()
        }
    }

    fn after_acquire_write(&mut self, op: &str, result: Result<Lease, ApiError>, sent: Instant) {
        match result {
            Ok(lease) => self.acquired(lease, sent),
            Err(e) if e.lost_race() => {
                debug!(error = %e, "another candidate won this round");
                // Keep a known holder; otherwise we only know that someone else wrote.
                if !matches!(*self.tx.borrow(), LeaderState::Following { .. }) {
                    self.publish(LeaderState::Following { holder: None });
                }
            }
            Err(e) => self.attempt_failed(op, &e),
        }
    }

    /// One leader attempt: renew, re-read after a failure to learn whether it committed, and step
    /// down once the renew deadline has passed. Returns the wait before the next.
    async fn renew_round(&mut self) -> Duration {
        for _ in 0..MAX_RENEW_PUTS_PER_ROUND {
            let Some(timeout) = self.call_timeout() else {
                self.step_down(StepDown::DeadlineMissed, LeaderState::Unknown);
                return self.follower_wait();
            };
            let Some((record, resource_version)) = self.election.plan_renew(Timestamp::now())
            else {
                return Duration::ZERO;
            };
            let sent = Instant::now();
            let error = match self
                .api
                .replace(&self.meta, &record, &resource_version, timeout)
                .await
            {
                Ok(lease) => {
                    self.renewed(lease, sent);
                    return self.config.retry_period;
                }
                Err(e) => e,
            };
            metrics::renew_failure(&self.config.lease_name, error.reason());
            debug!(error = %error, "renew failed; re-reading the Lease");
            match self.reread(&record, sent).await {
                Some(Reconciled::Committed) => return self.config.retry_period,
                Some(Reconciled::StillOurs) => {}
                Some(Reconciled::Lost { holder }) => {
                    self.step_down(StepDown::LeaseLost, LeaderState::Following { holder });
                    return self.follower_wait();
                }
                None => return self.config.retry_period,
            }
        }
        self.config.retry_period
    }

    /// The re-read after a failed or refused renew of `attempted`: the write may have committed
    /// although its answer was lost, and only the stored Lease tells. `None` if the read failed
    /// too, or the deadline passed (the caller's next round handles it).
    async fn reread(&mut self, attempted: &LeaseRecord, sent: Instant) -> Option<Reconciled> {
        let timeout = self.call_timeout()?;
        let read = match self.api.get(timeout).await {
            Ok(read) => read,
            Err(e) => {
                debug!(error = %e, "re-read after a failed renew failed too");
                return None;
            }
        };
        let read = read.map(|lease| self.adopt(lease));
        let verdict = self
            .election
            .reconcile(read, attempted, sent, Instant::now());
        if verdict == Reconciled::Committed {
            debug!("renew had committed despite the error");
            self.health.set(self.election.last_renew());
        }
        Some(verdict)
    }

    /// Per-call timeout while leading: `api_timeout`, capped by the time left before the
    /// deadline so the deadline holds even when the server hangs. `None` once it has passed.
    fn call_timeout(&self) -> Option<Duration> {
        let deadline = self.election.deadline()?;
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.min(self.config.api_timeout))
    }

    /// RetryPeriod × (1 + j), j uniform in [0, 0.2]. client-go waits up to 2.2 RetryPeriods; the
    /// smaller jitter gives faster failover and a tighter bound for the renew deadline rule.
    fn follower_wait(&self) -> Duration {
        let jitter = rand::random_range(0.0..=(JITTER_FACTOR - 1.0));
        self.config.retry_period.mul_f64(1.0 + jitter)
    }

    /// Takes a Lease read from the server apart, keeping its metadata for later PUTs.
    fn adopt(&mut self, lease: Lease) -> (LeaseRecord, String) {
        let (record, resource_version, meta) = lease_api::split(lease);
        self.meta = meta;
        (record, resource_version)
    }

    fn acquired(&mut self, lease: Lease, sent: Instant) {
        let (record, resource_version) = self.adopt(lease);
        let term = self.election.wrote(record, resource_version, sent);
        let token = CancellationToken::new();
        self.token = Some(token.clone());
        self.health.set(Some(sent));
        metrics::set_leader(&self.config.lease_name, true);
        metrics::set_misconfigured(&self.config.lease_name, false);
        metrics::transition(&self.config.lease_name, Transition::Acquired);
        info!(term, "acquired leadership");
        self.tx.send_replace(LeaderState::Leading { term, token });
    }

    fn renewed(&mut self, lease: Lease, sent: Instant) {
        let (record, resource_version) = self.adopt(lease);
        self.election.wrote(record, resource_version, sent);
        self.health.set(Some(sent));
    }

    /// Ends the term: token first, then the published state, so whoever sees the state leave
    /// `Leading` knows the term's token is already cancelled.
    fn step_down(&mut self, why: StepDown, next: LeaderState) {
        let term = self.election.step_down();
        if let Some(token) = self.token.take() {
            token.cancel();
        }
        self.health.set(None);
        metrics::set_leader(&self.config.lease_name, false);
        if term.is_some() && !matches!(why, StepDown::Shutdown) {
            metrics::transition(&self.config.lease_name, Transition::Lost);
            warn!(term, reason = why.as_str(), next = ?next, "stopped leading");
        }
        self.tx.send_replace(next);
    }

    /// Publishes a non-leading state, logging only when it differs from the current one.
    fn publish(&self, next: LeaderState) {
        if self.tx.borrow().same_as(&next) {
            return;
        }
        let misconfigured = matches!(next, LeaderState::Misconfigured { .. });
        metrics::set_misconfigured(&self.config.lease_name, misconfigured);
        match &next {
            LeaderState::Following { holder: Some(h) } => info!(holder = %h, "following"),
            LeaderState::Following { holder: None } => info!("following; holder unknown"),
            LeaderState::Unknown => warn!("leadership unknown: the API server is unreachable"),
            // Logged where it is detected, with its code and reason.
            LeaderState::Misconfigured { .. } | LeaderState::Leading { .. } => {}
        }
        self.tx.send_replace(next);
    }

    /// A follower's attempt failed on `op`. A configuration error (RBAC, credentials,
    /// namespace) is published as such and logged at ERROR once per distinct problem; anything
    /// else means the API server is unreachable or unwell.
    fn attempt_failed(&self, op: &str, error: &ApiError) {
        if error.is_misconfiguration() {
            metrics::config_error(&self.config.lease_name, error.reason());
            let next = LeaderState::Misconfigured {
                problem: format!("{op} Lease: {error}"),
            };
            if !self.tx.borrow().same_as(&next) {
                error!(
                    op,
                    code = error.code(),
                    reason = error.reason(),
                    error = %error,
                    "leader election is misconfigured; retrying every retry period until fixed"
                );
            }
            self.publish(next);
            return;
        }
        if !matches!(*self.tx.borrow(), LeaderState::Unknown) {
            debug!(error = %error, "election attempt failed");
        }
        self.publish(LeaderState::Unknown);
    }

    /// Stops leading and releases the Lease if we still hold it, so a follower takes over at its
    /// next attempt instead of after a full LeaseDuration.
    async fn finish(mut self) -> Result<(), Error> {
        let term = self.election.term();
        self.step_down(StepDown::Shutdown, LeaderState::Unknown);
        if !self.config.release_on_shutdown {
            return Ok(());
        }
        let mut result = self.release().await;
        if matches!(result, Err(ApiError::Conflict)) {
            // Our cached resourceVersion is stale, e.g. after a renew that committed but whose
            // answer we never got. Re-read once: if the Lease still names us, release that.
            debug!("release refused with 409; re-reading the Lease once");
            match self.api.get(self.config.api_timeout).await {
                Ok(read) => {
                    let read = read.map(|lease| self.adopt(lease));
                    self.election.observe(read, Instant::now());
                    result = self.release().await;
                }
                Err(e) => result = Err(e),
            }
        }
        match result {
            Ok(None) => Ok(()),
            Ok(Some(lease)) => {
                let read = Some(self.adopt(lease));
                self.election.observe(read, Instant::now());
                metrics::transition(&self.config.lease_name, Transition::Released);
                info!(term, "released the Lease");
                Ok(())
            }
            Err(e) if e.lost_race() => {
                debug!(error = %e, "Lease changed since our last write; nothing to release");
                Ok(())
            }
            Err(source) => {
                warn!(error = %source, "could not release the Lease; followers take over when it expires");
                Err(Error::Release {
                    lease: self.config.lease_name.clone(),
                    source,
                })
            }
        }
    }

    /// The release PUT, if our latest observation says we hold the Lease; `Ok(None)` when
    /// there is nothing to release.
    async fn release(&self) -> Result<Option<Lease>, ApiError> {
        let Some((record, resource_version)) = self.election.plan_release(Timestamp::now()) else {
            return Ok(None);
        };
        self.api
            .replace(
                &self.meta,
                &record,
                &resource_version,
                self.config.api_timeout,
            )
            .await
            .map(Some)
    }
}

impl Drop for Runner {
    /// An aborted task (crash simulation, runtime shutdown) still ends the term, so guarded
    /// work never outlives the loop that guarantees it.
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}
