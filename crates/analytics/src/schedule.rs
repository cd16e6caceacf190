//! `dm-analytics run`: the service. Readiness probes, the admin server, the election, and the
//! cycle loop that runs only while this replica leads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use rand::Rng;
use runtime::health::Health;
use runtime::redact::redact_text;
use runtime::throttle::Throttle;
use store::mysql_url::MysqlUri;
use store::{Fence, KlineSource, MongoSink, SinkError};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{LEASE_NAME, RunArgs, Settings};
use crate::cycle::analyze_all;
use crate::metrics::{self, Outcome};
use crate::write::{ensure_indexes, write_analyses};

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

/// What the cycle loop shares across terms.
struct Ctx {
    settings: Settings,
    interval: Duration,
    retry_min: Duration,
    source: KlineSource,
    sink: MongoSink,
    identity: String,
    lease: String,
    /// Held only by the one cycle loop that runs at a time (across terms).
    state: Mutex<LoopState>,
}

struct LoopState {
    indexes_ready: bool,
    failures: u32,
    throttle: Throttle,
}

/// Runs the service until `shutdown` is cancelled.
///
/// # Errors
/// [`RunError`] for startup failures only; once running, faults are retried, never fatal.
pub async fn run(
    args: RunArgs,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let handle = runtime::metrics::install(shutdown.clone())?;
    metrics::describe();
    leader::metrics::describe();
    let probe_every = args.probe_interval.0;
    let health = Health::new(
        "dm-analytics",
        Some(probe_every * 6 + Duration::from_secs(30)),
    );
    let tracker = TaskTracker::new();

    let listener = runtime::admin::bind(&args.admin)
        .await
        .map_err(RunError::Bind)?;
    let router = runtime::admin::router(runtime::admin::AdminState {
        health: health.clone(),
        metrics: handle,
        extra: None,
        service: "dm-analytics",
    });
    tracker.spawn(runtime::admin::serve(listener, router, shutdown.clone()));

    let options = MysqlUri::parse(args.mysql_uri.expose())?.to_options();
    let source = KlineSource::connect_lazy(options, settings.db_timeout);
    let sink = MongoSink::connect(
        args.mongodb_url.expose(),
        "dm-analytics",
        settings.db_timeout,
    )
    .await?;
    info!(
        mysql = %args.mysql_uri,
        mongodb = %args.mongodb_url,
        database = sink.database_name(),
        timeframes = ?settings.timeframes.iter().map(|t| t.label()).collect::<Vec<_>>(),
        symbols = ?settings.symbols,
        options = ?settings.options,
        interval_s = args.interval.0.as_secs_f64(),
        "dm-analytics starting"
    );

    if !args.enabled.0 {
        warn!("ENABLE_ANALYTICS is false: serving health and metrics only");
        health.set("analytics", true, "disabled by ENABLE_ANALYTICS");
        tracker.spawn(probe_loop(
            source.clone(),
            sink.clone(),
            health.clone(),
            None,
            probe_every,
            shutdown.clone(),
        ));
        shutdown.cancelled().await;
        health.begin_shutdown();
        tracker.close();
        let _ = tokio::time::timeout(args.shutdown_grace.0, tracker.wait()).await;
        return Ok(());
    }

    let election = args.election.to_config(LEASE_NAME)?;
    let elector = leader::start(election).await?;
    info!(
        identity = elector.identity(),
        lease = elector.lease_name(),
        "leader election started"
    );
    tracker.spawn(probe_loop(
        source.clone(),
        sink.clone(),
        health.clone(),
        Some(elector.subscribe()),
        probe_every,
        shutdown.clone(),
    ));

    let ctx = Arc::new(Ctx {
        settings,
        interval: args.interval.0,
        retry_min: args.retry_min.0,
        source: source.clone(),
        sink,
        identity: elector.identity().to_owned(),
        lease: elector.lease_name().to_owned(),
        state: Mutex::new(LoopState {
            indexes_ready: false,
            failures: 0,
            throttle: Throttle::new(args.interval.0),
        }),
    });
    leader::run_while_leading(elector.subscribe(), shutdown.clone(), |lead| {
        lead_loop(ctx.clone(), lead.term)
    })
    .await;

    // The work has stopped: now readiness goes down and the Lease is released.
    health.begin_shutdown();
    if let Err(e) = elector.shutdown().await {
        warn!(error = %redact_text(&e.to_string()), "releasing the Lease failed; it will expire");
    }
    tracker.close();
    let _ = tokio::time::timeout(args.shutdown_grace.0, tracker.wait()).await;
    source.close().await;
    info!("dm-analytics stopped");
    Ok(())
}

/// Sets the leader gauge while alive; the future is dropped when the term ends.
struct LeadingGauge;

impl LeadingGauge {
    fn new() -> LeadingGauge {
        ::metrics::gauge!(metrics::LEADER_STATUS).set(1.0);
        LeadingGauge
    }
}

impl Drop for LeadingGauge {
    fn drop(&mut self) {
        ::metrics::gauge!(metrics::LEADER_STATUS).set(0.0);
    }
}

/// The delay before retrying after `failures` consecutive failed cycles: `retry_min` doubling,
/// capped at the interval, with up to 20 % jitter.
pub fn backoff(failures: u32, retry_min: Duration, interval: Duration, jitter: f64) -> Duration {
    let exp = retry_min.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(interval).mul_f64(1.0 + jitter.clamp(0.0, 0.2))
}

/// Cycles every interval for one term; dropped by the guard when the term ends.
async fn lead_loop(ctx: Arc<Ctx>, term: i64) {
    let _gauge = LeadingGauge::new();
    let fence = Fence {
        lease: ctx.lease.clone(),
        term,
        holder: ctx.identity.clone(),
    };
    let mut state = ctx.state.lock().await;
    loop {
        let started = Instant::now();
        let outcome = cycle(&ctx, &mut state, &fence).await;
        metrics::cycle(outcome, started.elapsed().as_secs_f64());
        let wait = match outcome {
            Outcome::Ok => {
                state.failures = 0;
                ctx.interval
            }
            Outcome::Fenced => {
                // A newer term exists; our term is about to end. Never write again under it.
                std::future::pending::<()>().await;
                return;
            }
            Outcome::SourceError | Outcome::SinkError => {
                state.failures += 1;
                let jitter = rand::rng().random_range(0.0..0.2);
                backoff(state.failures, ctx.retry_min, ctx.interval, jitter)
            }
        };
        tokio::time::sleep_until((started + wait).into()).await;
    }
}

/// One cycle under `fence`: read and compute everything, then write it.
async fn cycle(ctx: &Ctx, state: &mut LoopState, fence: &Fence) -> Outcome {
    let started = Instant::now();
    let now = Utc::now().trunc_subsecs(0);
    let analyses = match analyze_all(&ctx.source, &ctx.settings, now).await {
        Ok(a) => a,
        Err(e) => {
            log_failure(state, "reading MySQL", &e.to_string());
            return Outcome::SourceError;
        }
    };
    let written = async {
        if !state.indexes_ready {
            ensure_indexes(&ctx.sink).await?;
            state.indexes_ready = true;
        }
        write_analyses(
            &ctx.sink,
            fence,
            &analyses,
            &ctx.settings.options,
            Utc::now(),
        )
        .await
    }
    .await;
    match written {
        Ok(counts) => {
            metrics::written(&counts);
            let mut skipped = std::collections::BTreeMap::new();
            for a in &analyses {
                for (k, n) in a.skipped() {
                    *skipped.entry(k).or_insert(0) += n;
                }
            }
            metrics::skipped(&skipped);
            ::metrics::gauge!(metrics::LAST_SUCCESS).set(now.timestamp() as f64);
            if state.failures > 0 {
                info!(failures = state.failures, "analytics cycles recovered");
            }
            let n: u64 = counts.values().sum();
            let skipped_n: u64 = skipped.values().sum();
            info!(
                term = fence.term,
                skipped = skipped_n,
                seconds = started.elapsed().as_secs_f64(),
                "Analytics cycle complete: calculated {n} metrics"
            );
            Outcome::Ok
        }
        Err(e) if e.is_fenced() => {
            warn!(term = fence.term, error = %e, "fenced: a newer leader term wrote; stopping this term's cycles");
            Outcome::Fenced
        }
        Err(e) => {
            log_failure(state, "writing MongoDB", &e.to_string());
            Outcome::SinkError
        }
    }
}

/// One summarised line per failing interval (the throttle's period is the interval).
fn log_failure(state: &mut LoopState, what: &str, error: &str) {
    if let Some(suppressed) = state.throttle.allow(Instant::now()) {
        warn!(
            failures = state.failures + 1,
            suppressed,
            error = %redact_text(error),
            "analytics cycle failed {what}; retrying with backoff"
        );
    }
}

/// Probes MySQL and Mongo for readiness and shows the election state; beats liveness.
async fn probe_loop(
    source: KlineSource,
    sink: MongoSink,
    health: Health,
    election: Option<tokio::sync::watch::Receiver<leader::LeaderState>>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let (mysql, mongo) = tokio::join!(source.ping(), sink.ping());
        match mysql {
            Ok(()) => health.set("mysql", true, "reachable"),
            Err(e) => health.set("mysql", false, e.to_string()),
        }
        match mongo {
            Ok(()) => health.set("mongodb", true, "reachable"),
            Err(e) => health.set("mongodb", false, e.to_string()),
        }
        if let Some(rx) = &election {
            // A follower is ready: it is a hot standby. The state is shown, not gated on.
            let detail = match &*rx.borrow() {
                leader::LeaderState::Leading { term, .. } => format!("leading (term {term})"),
                leader::LeaderState::Following { holder } => {
                    format!("following {}", holder.as_deref().unwrap_or("nobody"))
                }
                leader::LeaderState::Unknown => "unknown".to_owned(),
            };
            health.set("election", true, detail);
        }
        health.beat();
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_minimum_and_caps_at_the_interval() {
        let min = Duration::from_secs(30);
        let interval = Duration::from_secs(900);
        let secs: Vec<u64> = (1..=7)
            .map(|n| backoff(n, min, interval, 0.0).as_secs())
            .collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(backoff(1, min, interval, 0.2), Duration::from_secs(36));
    }
}
