//! `dm-analytics run`: what one analytics cycle does. The service around it (readiness probes,
//! the admin server, the election, the leader-gated loop) is [`elected_loop::run`].

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use elected_loop::{Failure, Job, RunConfig, Service, Starting, Stores, Term};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{LEASE_NAME, RunArgs, Settings};
use crate::metrics;
use crate::reads::analyze_all;
use crate::write::{WriteError, ensure_indexes, write_analyses};

pub use elected_loop::RunError;

/// dm-analytics as the scheduler sees it.
pub static SERVICE: Service = Service {
    name: "dm-analytics",
    component: "analytics",
    noun: "analytics",
    lease: LEASE_NAME,
    enable_var: "ENABLE_ANALYTICS",
    describe: metrics::describe,
    metrics: metrics::CYCLE,
};

/// Runs the service until `shutdown` is cancelled.
///
/// # Errors
/// [`RunError`] for startup failures only; once running, faults are retried, never fatal.
pub async fn run(
    args: RunArgs,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let config = RunConfig {
        admin: args.admin,
        election: args.election,
        store: args.store,
        service: args.service,
        interval: args.interval.0,
        retry_min: args.retry_min.0,
        enabled: args.enabled.0,
    };
    let analytics = Analytics {
        settings,
        indexes_ready: false,
    };
    elected_loop::run(&SERVICE, config, analytics, shutdown).await
}

/// The analytics job.
struct Analytics {
    settings: Settings,
    indexes_ready: bool,
}

/// What a written cycle reports.
struct Done {
    written: u64,
    skipped: u64,
    started: Instant,
}

impl Job for Analytics {
    type Done = Done;

    fn log_starting(&self, s: &Starting<'_>) {
        info!(
            mysql = %s.mysql,
            mongodb = %s.mongodb,
            database = s.database,
            timeframes = ?self.settings.timeframes.iter().map(|t| t.label()).collect::<Vec<_>>(),
            symbols = ?self.settings.symbols,
            options = ?self.settings.options,
            interval_s = s.interval.as_secs_f64(),
            "dm-analytics starting"
        );
    }

    /// Reads and computes everything, then writes it.
    async fn cycle(
        &mut self,
        stores: &Stores,
        term: &Term,
        now: DateTime<Utc>,
    ) -> Result<Done, Failure> {
        let started = Instant::now();
        let analyses = tokio::select! {
            r = analyze_all(&stores.source, &self.settings, now) => r.map_err(Failure::source)?,
            () = term.token.cancelled() => return Err(Failure::Stopped),
        };
        if !self.indexes_ready {
            ensure_indexes(&stores.sink).await?;
            self.indexes_ready = true;
        }
        let counts = write_analyses(
            &stores.sink,
            &term.fence,
            &analyses,
            &self.settings.options,
            Utc::now(),
            &term.token,
        )
        .await
        .map_err(|e| match e {
            WriteError::Sink(e) => Failure::Sink(e),
            WriteError::Stopped => Failure::Stopped,
        })?;
        metrics::written(&counts);
        let mut skipped = BTreeMap::new();
        for a in &analyses {
            for (k, n) in a.skipped() {
                *skipped.entry(k).or_insert(0) += n;
            }
        }
        metrics::skipped(&skipped);
        Ok(Done {
            written: counts.values().sum(),
            skipped: skipped.values().sum(),
            started,
        })
    }

    fn log_done(&self, done: Done, term: i64) {
        let n = done.written;
        info!(
            term,
            skipped = done.skipped,
            seconds = done.started.elapsed().as_secs_f64(),
            "Analytics cycle complete: calculated {n} metrics"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use elected_loop::backoff;

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
