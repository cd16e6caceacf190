//! `run`: the admin server, the probes, the election, and the cycle loop that runs only while
//! this replica leads. What a cycle does is the binary's [`Job`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use rand::Rng;
use runtime::config::{AdminArgs, ServiceArgs};
use runtime::health::Health;
use runtime::redact::{SecretUrl, redact_text};
use runtime::throttle::Throttle;
use store::config::StoreArgs;
use store::mysql_url::MysqlUri;
use store::{Fence, KlineSource, MongoSink, SinkError};
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::backoff::backoff;
use crate::metrics::{CycleMetrics, LeadingGauge, Outcome};
use crate::probe::probe_loop;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// MYSQL_URI does not parse.
    #[error("{0}")]
    MysqlUri(#[from] store::mysql_url::MysqlUriError),
    /// MONGODB_URL does not parse.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The admin port cannot be bound.
    #[error("binding the admin server: {0}")]
    Bind(#[source] std::io::Error),
    /// The metrics recorder is already installed.
    #[error("installing the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The election could not start.
    #[error("leader election: {0}")]
    Election(#[from] leader::Error),
    /// The election settings break a rule.
    #[error("leader election: {0}")]
    ElectionConfig(#[from] leader::ConfigError),
}

/// What names a scheduler: the parts of the service that differ per binary, besides its [`Job`].
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// The binary (`dm-auditor`): the admin server's service, the Mongo app name, log lines.
    pub name: &'static str,
    /// The readiness component that reports a disabled service (`auditor`).
    pub component: &'static str,
    /// The work, in failure logs: "`{noun}` cycle failed …", "`{noun}` cycles recovered".
    pub noun: &'static str,
    /// The Lease this binary's replicas elect through unless `LEASE_NAME` names another; one per
    /// binary, so the auditor and analytics each have exactly one leader.
    pub lease: &'static str,
    /// The variable that disables the work (`ENABLE_AUDITOR`).
    pub enable_var: &'static str,
    /// Registers the binary's metric names and help (called once the recorder is installed).
    pub describe: fn(),
    /// The binary's names for the cycle metrics.
    pub metrics: CycleMetrics,
}

/// The service's settings, assembled by the binary from its validated command line.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The admin server.
    pub admin: AdminArgs,
    /// The election.
    pub election: leader::ElectionArgs,
    /// MySQL, Mongo, database timeout.
    pub store: StoreArgs,
    /// Probe cadence and drain deadline.
    pub service: ServiceArgs,
    /// Pause between the start of one cycle and the next.
    pub interval: Duration,
    /// First retry delay after a failed cycle.
    pub retry_min: Duration,
    /// `false` serves health and metrics only: no election, no cycles.
    pub enabled: bool,
}

/// The two databases a cycle reads from and writes to.
#[derive(Debug, Clone)]
pub struct Stores {
    /// The extractor's klines.
    pub source: KlineSource,
    /// The results.
    pub sink: MongoSink,
}

/// What the startup line shows next to the job's own settings.
#[derive(Debug)]
pub struct Starting<'a> {
    /// MYSQL_URI, redacted when displayed.
    pub mysql: &'a SecretUrl,
    /// MONGODB_URL, redacted when displayed.
    pub mongodb: &'a SecretUrl,
    /// The results database.
    pub database: &'a str,
    /// The cycle interval.
    pub interval: Duration,
}

/// Why a cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Reading MySQL failed.
    #[error("{0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
    /// Writing Mongo failed (or was fenced by a newer term).
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The term ended (or shutdown began) before the cycle finished; it stopped between writes.
    #[error("the term ended before the cycle finished")]
    Stopped,
}

/// The term a cycle runs under.
#[derive(Debug, Clone)]
pub struct Term {
    /// Stamped on every write; carries the leader's write deadline.
    pub fence: Fence,
    /// Cancelled when the term ends or shutdown begins: check it between reads and between
    /// writes, and return [`Failure::Stopped`]. A write already sent is never abandoned; the
    /// sink refuses the next one once the deadline has passed.
    pub token: CancellationToken,
}

impl Failure {
    /// A MySQL-side failure.
    pub fn source(e: impl std::error::Error + Send + Sync + 'static) -> Failure {
        Failure::Source(Box::new(e))
    }
}

/// What one binary's cycle does. The job lives across terms, so it can carry results still owed.
pub trait Job: Send + 'static {
    /// What a successful cycle hands to [`Job::log_done`].
    type Done: Send;

    /// Logs the startup line: the shared fields of `starting` and the job's own settings.
    fn log_starting(&self, starting: &Starting<'_>);

    /// One cycle as of `now` (whole seconds), writing under `term`.
    fn cycle(
        &mut self,
        stores: &Stores,
        term: &Term,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Self::Done, Failure>> + Send;

    /// Logs a successful cycle of `term`.
    fn log_done(&self, done: Self::Done, term: i64);

    /// This replica's term has ended and its last cycle has returned: withdraw what only the
    /// leader should publish (per-dataset gauges), so a follower never exports stale results.
    fn term_ended(&mut self) {}
}

/// What the cycle loop shares across terms.
struct Ctx<J> {
    service: &'static Service,
    interval: Duration,
    retry_min: Duration,
    stores: Stores,
    /// Held by the one term loop that runs at a time, until its last write has returned.
    state: Arc<Mutex<LoopState<J>>>,
    /// Notified by a term loop that was fenced: the replica steps down.
    step_down: tokio::sync::Notify,
    /// How long to wait for the last cycle to stop before releasing the Lease.
    drain: Duration,
}

/// One elector's side of a term: who we are and until when we may write.
#[derive(Clone)]
struct Candidate {
    identity: String,
    lease: String,
    deadline: store::sink::Deadline,
}

struct LoopState<J> {
    job: J,
    failures: u32,
    throttle: Throttle,
}

/// Runs `service` with `job` until `shutdown` is cancelled.
///
/// # Errors
/// [`RunError`] for startup failures only; once running, faults are retried, never fatal.
pub async fn run<J: Job>(
    service: &'static Service,
    config: RunConfig,
    job: J,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let admin = Admin::start(service, &config, &shutdown).await?;
    let stores = connect(service, &config.store).await?;
    job.log_starting(&Starting {
        mysql: &config.store.mysql_uri,
        mongodb: &config.store.mongodb_url,
        database: stores.sink.database_name(),
        interval: config.interval,
    });
    if !config.enabled {
        serve_disabled(service, &admin, stores, &config, &shutdown).await;
        return Ok(());
    }

    let election_view = Arc::new(std::sync::Mutex::new(None));
    admin.tracker.spawn(probe_loop(
        stores.source.clone(),
        stores.sink.clone(),
        admin.health.clone(),
        Some(election_view.clone()),
        config.service.probe_interval.0,
        shutdown.clone(),
    ));
    let source = stores.source.clone();
    let ctx = Arc::new(Ctx::new(service, &config, stores, job));
    let result = elect_and_work(&ctx, &config.election, &election_view, &shutdown).await;

    admin.stop(config.service.shutdown_grace.0).await;
    source.close().await;
    info!("{} stopped", service.name);
    result
}

/// The admin server and the probes: health and metrics, served whether or not this replica
/// leads.
struct Admin {
    health: Health,
    tracker: TaskTracker,
}

impl Admin {
    /// Installs the metrics recorder, describes every metric and starts the admin server.
    async fn start(
        service: &'static Service,
        config: &RunConfig,
        shutdown: &CancellationToken,
    ) -> Result<Self, RunError> {
        let handle = runtime::metrics::install(shutdown.clone())?;
        (service.describe)();
        service.metrics.describe(service.noun);
        service.metrics.zero();
        leader::metrics::describe();
        let probe_every = config.service.probe_interval.0;
        let health = Health::new(
            service.name,
            Some(probe_every * 6 + Duration::from_secs(30)),
        );
        let tracker = TaskTracker::new();
        let listener = runtime::admin::bind(&config.admin)
            .await
            .map_err(RunError::Bind)?;
        let router = runtime::admin::router(runtime::admin::AdminState {
            health: health.clone(),
            metrics: handle,
            extra: None,
            service: service.name,
        });
        tracker.spawn(runtime::admin::serve(listener, router, shutdown.clone()));
        Ok(Self { health, tracker })
    }

    /// Fails readiness, then waits up to `grace` for the admin server and the probes to end.
    async fn stop(&self, grace: Duration) {
        self.health.begin_shutdown();
        self.tracker.close();
        let _ = tokio::time::timeout(grace, self.tracker.wait()).await;
    }
}

/// The MySQL source (connected lazily) and the Mongo sink.
async fn connect(service: &Service, config: &StoreArgs) -> Result<Stores, RunError> {
    let db_timeout = config.db_timeout.0;
    let options = MysqlUri::parse(config.mysql_uri.expose())?.to_options();
    let source = KlineSource::connect_lazy(options, db_timeout);
    let sink = MongoSink::connect(config.mongodb_url.expose(), service.name, db_timeout).await?;
    Ok(Stores { source, sink })
}

/// With the work disabled: report so in readiness, probe the databases, and wait for shutdown.
async fn serve_disabled(
    service: &Service,
    admin: &Admin,
    stores: Stores,
    config: &RunConfig,
    shutdown: &CancellationToken,
) {
    warn!(
        "{} is false: serving health and metrics only",
        service.enable_var
    );
    admin.health.set(
        service.component,
        true,
        format!("disabled by {}", service.enable_var),
    );
    admin.tracker.spawn(probe_loop(
        stores.source,
        stores.sink,
        admin.health.clone(),
        None,
        config.service.probe_interval.0,
        shutdown.clone(),
    ));
    shutdown.cancelled().await;
    admin.stop(config.service.shutdown_grace.0).await;
}

impl<J> Ctx<J> {
    fn new(service: &'static Service, config: &RunConfig, stores: Stores, job: J) -> Self {
        Self {
            service,
            interval: config.interval,
            retry_min: config.retry_min,
            stores,
            state: Arc::new(Mutex::new(LoopState {
                job,
                failures: 0,
                throttle: Throttle::new(config.interval),
            })),
            step_down: tokio::sync::Notify::new(),
            drain: config.service.shutdown_grace.0,
        }
    }
}

/// Stands for election and works while leading, until `shutdown`. A fenced term steps down:
/// it releases the Lease and stands again as a new candidate, so a Lease whose term went
/// backwards (deleted and re-created) climbs past the fence instead of stalling forever.
async fn elect_and_work<J: Job>(
    ctx: &Arc<Ctx<J>>,
    args: &leader::ElectionArgs,
    view: &std::sync::Mutex<Option<watch::Receiver<leader::LeaderState>>>,
    shutdown: &CancellationToken,
) -> Result<(), RunError> {
    loop {
        let election = args.to_config(ctx.service.lease)?;
        let retry_period = election.retry_period;
        let elector = leader::start(election).await?;
        info!(
            identity = elector.identity(),
            lease = elector.lease_name(),
            "leader election started"
        );
        if let Ok(mut v) = view.lock() {
            *v = Some(elector.subscribe());
        }
        let candidate_is_local = elector.write_deadline().is_none();
        let candidate = Candidate {
            identity: elector.identity().to_owned(),
            lease: elector.lease_name().to_owned(),
            deadline: match elector.write_deadline() {
                Some(d) => store::sink::Deadline::from_fn(move || d.valid_until()),
                None => store::sink::Deadline::none(),
            },
        };
        let fenced = tokio::select! {
            () = leader::run_while_leading(elector.subscribe(), shutdown.clone(), |lead| {
                spawn_term(ctx.clone(), candidate.clone(), lead, shutdown.clone())
            }) => false,
            () = ctx.step_down.notified() => true,
        };
        // Release only after the last term's writes have returned (the lock is held until
        // then). If they have not returned in time, leave the Lease to expire instead.
        if tokio::time::timeout(ctx.drain, ctx.state.lock())
            .await
            .is_ok()
        {
            if let Err(e) = elector.shutdown().await {
                warn!(error = %redact_text(&e.to_string()), "releasing the Lease failed; it will expire");
            }
        } else {
            warn!("the last cycle did not stop in time; not releasing the Lease (it will expire)");
            elector.abort();
        }
        if !fenced || shutdown.is_cancelled() {
            return Ok(());
        }
        if candidate_is_local {
            // Without a Lease the term is always 0: standing again cannot pass the fence.
            error!(
                "fenced without leader election: a newer term wrote these results; \
                 not writing until restarted (delete the leader_fence document to reset)"
            );
            shutdown.cancelled().await;
            return Ok(());
        }
        warn!("stepped down after a fenced write; standing for election again");
        tokio::select! {
            () = tokio::time::sleep(retry_period) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

/// Runs one term's loop as its own task and waits for it. When the term ends this future is
/// dropped, but the task is not: it stops between writes and ends by itself, holding the
/// job's lock until its last write has returned.
async fn spawn_term<J: Job>(
    ctx: Arc<Ctx<J>>,
    candidate: Candidate,
    lead: leader::Leadership,
    shutdown: CancellationToken,
) {
    let work = CancellationToken::new();
    let watch_work = work.clone();
    let term_token = lead.token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = term_token.cancelled() => {}
            () = shutdown.cancelled() => {}
        }
        watch_work.cancel();
    });
    let term = Term {
        fence: Fence {
            lease: candidate.lease,
            term: lead.term,
            holder: candidate.identity,
            deadline: candidate.deadline,
        },
        token: work,
    };
    let _ = tokio::spawn(term_loop(ctx, term)).await;
}

/// Cycles every interval for one term, until its token is cancelled or it is fenced.
async fn term_loop<J: Job>(ctx: Arc<Ctx<J>>, term: Term) {
    let mut state = ctx.state.clone().lock_owned().await;
    if term.token.is_cancelled() {
        return;
    }
    let gauge = LeadingGauge::new(ctx.service.metrics.leader_status);
    loop {
        let started = Instant::now();
        let outcome = cycle(&ctx, &mut state, &term).await;
        ctx.service
            .metrics
            .cycle(outcome, started.elapsed().as_secs_f64());
        let wait = match outcome {
            Outcome::Ok => {
                state.failures = 0;
                ctx.interval
            }
            Outcome::Fenced => {
                // A newer term wrote, or this Lease's terms went backwards: never write again
                // under this term, and step down so that leadership moves on.
                ctx.service.metrics.fenced();
                ctx.step_down.notify_one();
                break;
            }
            Outcome::Stopped => break,
            Outcome::SourceError | Outcome::SinkError => {
                state.failures += 1;
                let jitter = rand::rng().random_range(0.0..0.2);
                backoff(state.failures, ctx.retry_min, ctx.interval, jitter)
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until((started + wait).into()) => {}
            () = term.token.cancelled() => break,
        }
    }
    state.job.term_ended();
    drop(gauge);
}

/// One cycle under `term`: the job's, then its outcome counted and logged.
async fn cycle<J: Job>(ctx: &Ctx<J>, state: &mut LoopState<J>, term: &Term) -> Outcome {
    let now = Utc::now().trunc_subsecs(0);
    let fence = &term.fence;
    match state.job.cycle(&ctx.stores, term, now).await {
        Ok(done) => {
            ctx.service.metrics.success(now.timestamp() as f64);
            if state.failures > 0 {
                info!(
                    failures = state.failures,
                    "{} cycles recovered", ctx.service.noun
                );
            }
            state.job.log_done(done, fence.term);
            Outcome::Ok
        }
        Err(Failure::Source(e)) => {
            log_failure(ctx, state, "reading MySQL", &e.to_string());
            Outcome::SourceError
        }
        Err(Failure::Sink(e)) if e.is_fenced() => {
            warn!(term = fence.term, error = %e, "fenced: a newer leader term wrote; stopping this term's cycles");
            Outcome::Fenced
        }
        Err(Failure::Sink(e)) if e.ends_term() => {
            info!(term = fence.term, error = %e, "the term ended during a cycle; it stopped between writes");
            Outcome::Stopped
        }
        Err(Failure::Stopped) => {
            info!(
                term = fence.term,
                "the term ended during a cycle; it stopped between writes"
            );
            Outcome::Stopped
        }
        Err(Failure::Sink(e)) => {
            log_failure(ctx, state, "writing MongoDB", &e.to_string());
            Outcome::SinkError
        }
    }
}

/// One summarised line per failing interval (the throttle's period is the interval).
fn log_failure<J>(ctx: &Ctx<J>, state: &mut LoopState<J>, what: &str, error: &str) {
    if let Some(suppressed) = state.throttle.allow(Instant::now()) {
        warn!(
            failures = state.failures + 1,
            suppressed,
            error = %redact_text(error),
            "{} cycle failed {what}; retrying with backoff",
            ctx.service.noun
        );
    }
}
