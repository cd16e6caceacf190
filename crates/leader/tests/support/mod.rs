//! Shared setup for the election tests: a [`Cluster`] (the in-process fake API server or the real
//! kube-apiserver of `make test-k8s`, each with a namespace of its own), candidates (an elector
//! plus guarded work) that record a timeline, and the safety checks over it.
#![allow(dead_code)] // each test binary uses a subset

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Uri};
use leader::{ElectionConfig, ElectorHandle, LeaderState};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::rbac::v1::PolicyRule;
use leader::testing::{FakeApi, LeaseWatch, RealApi};
pub use testkit::eventually;

/// Generates, for each named `async fn(&Cluster)`, a module with two tests: `fake` against the
/// in-process fake, and `real` against the real kube-apiserver (ignored unless run by
/// `make test-k8s`, which sets the server up and runs the ignored tests).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fake() {
                super::$name(&super::support::Cluster::fake().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs the real kube-apiserver of `make test-k8s`"]
            async fn real() {
                super::$name(&super::support::Cluster::real().await).await;
            }
        }
    )*};
}

/// Where the Leases live for one test: a backend and a fresh namespace on it.
pub struct Cluster {
    backend: Backend,
    /// The test's own namespace; electors' configs and [`Cluster::client`] default to it.
    pub ns: String,
    admin: kube::Config,
}

enum Backend {
    Fake(FakeApi),
    Real(Box<RealApi>),
}

impl Cluster {
    /// The in-process fake, with a fresh namespace.
    pub async fn fake() -> Self {
        let fake = FakeApi::start().await;
        let ns = format!("ns-{:08x}", rand::random::<u32>());
        fake.create_namespace(&ns);
        let uri: Uri = fake.url().parse().expect("fake URL parses");
        let mut admin = kube::Config::new(uri);
        admin.auth_info.token = Some(fake.admin_token().to_owned().into());
        admin.default_namespace = ns.clone();
        Self {
            backend: Backend::Fake(fake),
            ns,
            admin,
        }
    }

    /// The real kube-apiserver of `make test-k8s`, with a fresh namespace.
    pub async fn real() -> Self {
        let real = RealApi::from_env();
        let ns = real.create_namespace("dm-leader").await;
        let mut admin = real.admin_config().await;
        admin.default_namespace = ns.clone();
        Self {
            backend: Backend::Real(Box::new(real)),
            ns,
            admin,
        }
    }

    /// The fake, for tests that turn its fault knobs or read its request log.
    pub fn fake_api(&self) -> &FakeApi {
        match &self.backend {
            Backend::Fake(fake) => fake,
            Backend::Real(_) => panic!("this test needs the fake's fault knobs"),
        }
    }

    pub fn is_real(&self) -> bool {
        matches!(self.backend, Backend::Real(_))
    }

    /// The admin's client config, defaulting to the test's namespace.
    pub fn admin_config(&self) -> kube::Config {
        self.admin.clone()
    }

    /// An election client (the admin's credentials) for one elector, marked with `x-elector`
    /// (the fake's knobs tell electors apart by it; the real server ignores it).
    pub fn client(&self, elector: &str) -> kube::Client {
        self.client_from(self.admin_config(), elector)
    }

    /// An election client for one elector with `token` instead of the admin's.
    pub fn client_with_token(&self, token: &str, elector: &str) -> kube::Client {
        let mut cfg = self.admin_config();
        cfg.auth_info.token = Some(token.to_owned().into());
        self.client_from(cfg, elector)
    }

    fn client_from(&self, mut cfg: kube::Config, elector: &str) -> kube::Client {
        cfg.headers.push((
            HeaderName::from_static("x-elector"),
            HeaderValue::from_str(elector).expect("elector names are ASCII"),
        ));
        leader::election_client(cfg, API_TIMEOUT).expect("client builds")
    }

    /// A token of a user no role names (every Lease request gets 403).
    pub fn norole_token(&self) -> String {
        match &self.backend {
            Backend::Fake(fake) => {
                let token = format!("norole-{:08x}", rand::random::<u32>());
                fake.add_user(&token, "dm-norole");
                token
            }
            Backend::Real(real) => real.norole_token().to_owned(),
        }
    }

    /// A token of ServiceAccount `sa` of the test's namespace, bound to a Role with `rules`.
    /// On the real server the binding takes effect asynchronously: callers poll.
    pub async fn token_with_rules(&self, sa: &str, rules: Vec<PolicyRule>) -> String {
        match &self.backend {
            Backend::Fake(fake) => {
                let token = format!("sa-{sa}-{:08x}", rand::random::<u32>());
                fake.add_user(&token, &format!("system:serviceaccount:{}:{sa}", self.ns));
                fake.bind(&token, &self.ns, &rules);
                token
            }
            Backend::Real(real) => real.service_account_with_role(&self.ns, sa, rules).await,
        }
    }

    /// The stored Lease `name` of the test's namespace.
    pub async fn lease(&self, name: &str) -> Option<Lease> {
        match &self.backend {
            Backend::Fake(fake) => fake.lease(&self.ns, name),
            Backend::Real(real) => real.lease(&self.ns, name).await,
        }
    }

    /// Starts recording every committed version of Lease `name` with the (monotonic) time it
    /// was committed: the fake's own log, or a watch on the real server (its events arrive
    /// within a loopback round trip of the commit).
    pub async fn record(&self, name: &str) -> Commits {
        match &self.backend {
            Backend::Fake(_) => Commits(CommitsInner::Fake),
            Backend::Real(real) => {
                Commits(CommitsInner::Real(real.watch_lease(&self.ns, name).await))
            }
        }
    }

    /// Committed versions of the Lease so far, in commit order, as (when, spec).
    pub fn commits(&self, recorder: &Commits) -> Vec<(Instant, LeaseSpec)> {
        match (&recorder.0, &self.backend) {
            (CommitsInner::Real(watch), _) => watch.versions(),
            (CommitsInner::Fake, Backend::Fake(fake)) => fake
                .log()
                .into_iter()
                .filter_map(|e| e.committed.map(|spec| (e.at, spec)))
                .collect(),
            (CommitsInner::Fake, Backend::Real(_)) => unreachable!("recorders match their cluster"),
        }
    }
}

/// A recording of a Lease's committed versions; see [`Cluster::record`].
pub struct Commits(CommitsInner);

enum CommitsInner {
    Fake,
    Real(LeaseWatch),
}
/// Test timings, short so that failovers take about a second: they pass validation
/// (1 > 0.6 > 1.2 × 0.2).
pub const LD: Duration = Duration::from_secs(1);
pub const RD: Duration = Duration::from_millis(600);
pub const RP: Duration = Duration::from_millis(200);
pub const API_TIMEOUT: Duration = Duration::from_millis(200);
/// The longest follower wait, 1.2 × RP.
pub const A: Duration = Duration::from_millis(240);
/// Allowance for scheduling and loopback round trips on a loaded 2-core CI box. Bounds below
/// are the protocol's bound plus this; it is well under the quantities being checked (LD, RD).
pub const SLACK: Duration = Duration::from_millis(300);
/// Generous bound for "eventually someone leads" from a cold start or after a fault.
pub const SETTLE: Duration = Duration::from_secs(5);

/// The short-timing config for `lease` in `ns`, with an identity derived from the elector's name.
pub fn config(ns: &str, lease: &str, elector: &str) -> ElectionConfig {
    let mut cfg = ElectionConfig::new(lease, leader::identity::identity(Some(elector), None))
        .with_timings(LD, RD, RP);
    cfg.api_timeout = API_TIMEOUT;
    cfg.namespace = Some(ns.into());
    cfg
}

/// A unique Lease name per test.
pub fn lease_name(test: &str) -> String {
    format!("{test}-{:08x}", rand::random::<u32>())
}

/// Something that happened, as recorded by the harness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Guarded work started for a term.
    WorkStarted { elector: String, term: i64 },
    /// Guarded work was dropped (term over) or finished.
    WorkStopped { elector: String, term: i64 },
    /// The elector's published state changed (summary).
    State { elector: String, state: Summary },
    /// The harness aborted the elector (crash).
    Crashed { elector: String },
    /// The harness stopped the work and awaited it, before calling `shutdown`.
    WorkDrained { elector: String },
}

/// A `LeaderState` without the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Summary {
    Unknown,
    Following(Option<String>),
    Leading(i64),
    Misconfigured(String),
    Stopped,
}

impl From<&LeaderState> for Summary {
    fn from(s: &LeaderState) -> Self {
        match s {
            LeaderState::Unknown => Self::Unknown,
            LeaderState::Following { holder } => Self::Following(holder.clone()),
            LeaderState::Misconfigured { problem } => Self::Misconfigured(problem.clone()),
            LeaderState::Leading { term, .. } => Self::Leading(*term),
        }
    }
}

/// A work interval: one elector's guarded work for one term.
#[derive(Clone, Debug)]
pub struct Interval {
    pub elector: String,
    pub term: i64,
    pub start: Instant,
    pub end: Option<Instant>,
}

/// Everything the candidates of one test did, timestamped on the monotonic clock.
#[derive(Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<(Instant, Event)>>>);

impl Timeline {
    pub fn push(&self, event: Event) {
        let at = Instant::now();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((at, event));
    }

    pub fn events(&self) -> Vec<(Instant, Event)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first time `pred` matched an event, if it did.
    pub fn first(&self, pred: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.events()
            .into_iter()
            .find(|(_, e)| pred(e))
            .map(|(at, _)| at)
    }

    /// Work intervals in start order.
    pub fn intervals(&self) -> Vec<Interval> {
        let mut out: Vec<Interval> = Vec::new();
        for (at, event) in self.events() {
            match event {
                Event::WorkStarted { elector, term } => out.push(Interval {
                    elector,
                    term,
                    start: at,
                    end: None,
                }),
                Event::WorkStopped { elector, term } => {
                    if let Some(open) = out
                        .iter_mut()
                        .rev()
                        .find(|i| i.elector == elector && i.term == term && i.end.is_none())
                    {
                        open.end = Some(at);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The safety property: no two work intervals overlap, and terms strictly increase in
    /// time order (so each term belongs to exactly one identity). Returns the intervals.
    pub fn assert_safe(&self) -> Vec<Interval> {
        let intervals = self.intervals();
        for pair in intervals.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let end = a.end.unwrap_or_else(|| {
                panic!("{a:?} never ended but {b:?} started after it: two leaders at once")
            });
            assert!(
                end <= b.start,
                "overlap: {} (term {}) worked until {:?} after {} (term {}) started",
                a.elector,
                a.term,
                end - b.start,
                b.elector,
                b.term
            );
            assert!(
                a.term < b.term,
                "terms must strictly increase: {a:?} then {b:?}"
            );
        }
        intervals
    }
}

/// An elector plus guarded work that records its term intervals, like a scheduler binary.
pub struct Candidate {
    pub name: String,
    pub identity: String,
    timeline: Timeline,
    handle: Option<ElectorHandle>,
    work: Option<JoinHandle<()>>,
    stop_work: CancellationToken,
}

impl Candidate {
    pub fn start(cluster: &Cluster, timeline: &Timeline, lease: &str, name: &str) -> Self {
        let cfg = config(&cluster.ns, lease, name);
        Self::start_with(cluster.client(name), timeline, cfg, name)
    }

    pub fn start_with(
        client: kube::Client,
        timeline: &Timeline,
        cfg: ElectionConfig,
        name: &str,
    ) -> Self {
        let handle = leader::spawn(client, cfg).expect("valid config");
        let stop_work = CancellationToken::new();
        // Records every published state (the watch may coalesce; the work intervals are exact).
        tokio::spawn({
            let mut rx = handle.subscribe();
            let timeline = timeline.clone();
            let elector = name.to_owned();
            async move {
                loop {
                    let state = Summary::from(&*rx.borrow_and_update());
                    timeline.push(Event::State {
                        elector: elector.clone(),
                        state,
                    });
                    if rx.changed().await.is_err() {
                        timeline.push(Event::State {
                            elector,
                            state: Summary::Stopped,
                        });
                        return;
                    }
                }
            }
        });
        let work = tokio::spawn(leader::run_while_leading(
            handle.subscribe(),
            stop_work.clone(),
            {
                let timeline = timeline.clone();
                let elector = name.to_owned();
                move |lead: leader::Leadership| {
                    let timeline = timeline.clone();
                    let elector = elector.clone();
                    async move {
                        timeline.push(Event::WorkStarted {
                            elector: elector.clone(),
                            term: lead.term,
                        });
                        let _stopped = OnDrop(Some(Box::new(move || {
                            timeline.push(Event::WorkStopped {
                                elector,
                                term: lead.term,
                            });
                        })));
                        std::future::pending::<()>().await;
                    }
                }
            },
        ));
        Self {
            name: name.to_owned(),
            identity: handle.identity().to_owned(),
            timeline: timeline.clone(),
            handle: Some(handle),
            work: Some(work),
            stop_work,
        }
    }

    pub fn state(&self) -> LeaderState {
        self.handle
            .as_ref()
            .map_or(LeaderState::Unknown, ElectorHandle::state)
    }

    pub fn is_leading(&self) -> bool {
        self.state().is_leading()
    }

    pub fn handle(&self) -> &ElectorHandle {
        self.handle.as_ref().expect("running")
    }

    /// Kills the elector without a release, as a crashed process would vanish.
    pub fn crash(mut self) {
        self.timeline.push(Event::Crashed {
            elector: self.name.clone(),
        });
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        if let Some(work) = self.work.take() {
            work.abort();
        }
    }

    /// Graceful shutdown in the only safe order: stop the work and await it, then shut the
    /// elector down (which releases the Lease if we hold it), so no follower starts early.
    pub async fn graceful(mut self) -> Result<(), leader::Error> {
        self.stop_work.cancel();
        if let Some(work) = self.work.take() {
            work.await.expect("work task does not panic");
        }
        self.timeline.push(Event::WorkDrained {
            elector: self.name.clone(),
        });
        match self.handle.take() {
            Some(handle) => handle.shutdown().await,
            None => Ok(()),
        }
    }
}

impl Drop for Candidate {
    fn drop(&mut self) {
        self.stop_work.cancel();
    }
}

/// Runs a closure when dropped: how the work records the moment it is cancelled.
pub struct OnDrop(pub Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Waits until exactly one of `candidates` leads and returns its index.
pub async fn leader_among(candidates: &[Candidate], within: Duration) -> usize {
    eventually(within, || async {
        let leading: Vec<usize> = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_leading())
            .map(|(i, _)| i)
            .collect();
        (leading.len() == 1).then(|| leading[0])
    })
    .await
}
