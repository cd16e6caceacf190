//! `dm-auditor run`: what one audit cycle does. The service around it (readiness probes, the
//! admin server, the election, the leader-gated loop) is [`elected_loop::run`].

use std::time::Instant;

use chrono::{DateTime, Utc};
use elected_loop::{Failure, Job, RunConfig, Service, Starting, Stores, Term};
use store::MongoSink;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{LEASE_NAME, RunArgs, Settings};
use crate::dataset::DatasetReport;
use crate::metrics;
use crate::once::summary;
use crate::quality_events::QualityEvents;
use crate::reads::audit_all;
use crate::reads::earliest_start;
use crate::write::{WriteError, ensure_indexes, stored_row_keys, write_reports};

pub use elected_loop::RunError;

/// Cycles whose write failed and is owed; beyond this the oldest is dropped (a Mongo outage of
/// an hour at the default interval). The newest results matter most.
const MAX_PENDING_CYCLES: usize = 12;

/// dm-auditor as the scheduler sees it.
pub static SERVICE: Service = Service {
    name: "dm-auditor",
    component: "auditor",
    noun: "audit",
    lease: LEASE_NAME,
    enable_var: "ENABLE_AUDITOR",
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
        store: args.audit.store,
        service: args.service,
        interval: args.interval.0,
        retry_min: args.retry_min.0,
        enabled: args.enabled.0,
    };
    let audit = Audit {
        settings,
        owed: Vec::new(),
        indexes_ready: false,
        events: QualityEvents::new(args.events),
    };
    elected_loop::run(&SERVICE, config, audit, shutdown).await
}

/// A cycle's results not yet written, and the term that computed them: only that term may
/// write them (a later term has newer results, which older ones must never roll back).
struct Owed {
    reports: Vec<DatasetReport>,
    trades: Vec<crate::trades::TradesReport>,
    run_id: String,
    at: DateTime<Utc>,
    term: i64,
}

/// The audit job: lives across terms, carrying the results whose write is still owed.
struct Audit {
    settings: Settings,
    owed: Vec<Owed>,
    indexes_ready: bool,
    events: QualityEvents,
}

impl Job for Audit {
    /// The summary line.
    type Done = String;

    fn log_starting(&self, s: &Starting<'_>) {
        info!(
            mysql = %s.mysql,
            mongodb = %s.mongodb,
            database = s.database,
            timeframes = ?self.settings.timeframes.iter().map(|t| t.label()).collect::<Vec<_>>(),
            symbols = ?self.settings.symbols,
            interval_s = s.interval.as_secs_f64(),
            "dm-auditor starting"
        );
    }

    /// Reads and checks everything, then writes what is owed, oldest first.
    async fn cycle(
        &mut self,
        stores: &Stores,
        term: &Term,
        now: DateTime<Utc>,
    ) -> Result<String, Failure> {
        let started = Instant::now();
        let fence = &term.fence;
        let discarded = discard_other_terms(&mut self.owed, fence.term);
        if discarded > 0 {
            warn!(
                discarded,
                term = fence.term,
                "discarded unwritten cycles of an earlier term"
            );
        }
        // Unknown (Mongo down) only means the row cap may hide a stored finding this cycle.
        let stored = tokio::select! {
            r = stored_row_keys(&stores.sink, earliest_start(&self.settings, now)) => r.ok(),
            () = term.token.cancelled() => return Err(Failure::Stopped),
        };
        let reports = tokio::select! {
            r = audit_all(&stores.source, &self.settings, now, stored.as_ref(), &term.token) => r.map_err(Failure::source)?,
            () = term.token.cancelled() => return Err(Failure::Stopped),
        };
        // The trades datasets: isolated per dataset the same way, stopped by the same token.
        let trades = tokio::select! {
            r = crate::trades::reads::audit_all(&stores.source, &self.settings, now, &term.token) => r.map_err(Failure::source)?,
            () = term.token.cancelled() => return Err(Failure::Stopped),
        };
        if term.token.is_cancelled() {
            return Err(Failure::Stopped);
        }
        let line = summary(&reports, started.elapsed().as_secs_f64());
        metrics::results(&reports);
        crate::trades::metrics::results(&trades);
        self.events.observe(&stores.sink, &reports, fence).await;
        self.owed.push(Owed {
            reports,
            trades,
            run_id: format!("{}-{}-{}", fence.holder, fence.term, now.timestamp()),
            at: now,
            term: fence.term,
        });
        if self.owed.len() > MAX_PENDING_CYCLES {
            let dropped = self.owed.len() - MAX_PENDING_CYCLES;
            self.owed.drain(..dropped);
            warn!(dropped, "dropped the oldest unwritten cycles");
        }
        let outcome = self.write_owed(&stores.sink, term).await;
        ::metrics::gauge!(metrics::PENDING_CYCLES).set(self.owed.len() as f64);
        match outcome {
            Ok(()) => {
                self.events.publish().await;
                Ok(line)
            }
            Err(WriteError::Stopped) => Err(Failure::Stopped),
            Err(WriteError::Sink(e)) => {
                if e.ends_term() {
                    // Nothing of this term may be written any more.
                    self.owed.clear();
                    ::metrics::gauge!(metrics::PENDING_CYCLES).set(0.0);
                }
                Err(Failure::Sink(e))
            }
        }
    }

    fn log_done(&self, line: String, term: i64) {
        info!(term, "{line}");
    }

    /// Withdraws the per-dataset gauges: a follower exports no findings and no scores.
    fn term_ended(&mut self) {
        metrics::withdraw();
    }
}

/// Drops the owed cycles computed under a term other than `term`; returns how many.
fn discard_other_terms(owed: &mut Vec<Owed>, term: i64) -> usize {
    let before = owed.len();
    owed.retain(|o| o.term == term);
    before - owed.len()
}

impl Audit {
    async fn write_owed(&mut self, sink: &MongoSink, term: &Term) -> Result<(), WriteError> {
        if !self.indexes_ready {
            ensure_indexes(sink, self.settings.health_history_days).await?;
            self.indexes_ready = true;
        }
        while let Some(owed) = self.owed.first() {
            write_reports(
                sink,
                &term.fence,
                &owed.reports,
                &owed.run_id,
                owed.at,
                &term.token,
            )
            .await?;
            crate::trades::documents::write_reports(
                sink,
                &term.fence,
                &owed.trades,
                &owed.run_id,
                owed.at,
                &term.token,
            )
            .await?;
            self.owed.remove(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use elected_loop::backoff;

    use super::*;

    #[test]
    fn owed_cycles_of_another_term_are_discarded() {
        let owed = |term| Owed {
            reports: Vec::new(),
            trades: Vec::new(),
            run_id: format!("r{term}"),
            at: store::testing::at(2025, 1, 1, 0, 0, 0),
            term,
        };
        let mut list = vec![owed(3), owed(3), owed(5)];
        assert_eq!(discard_other_terms(&mut list, 5), 2);
        assert_eq!(list.iter().map(|o| o.term).collect::<Vec<_>>(), [5]);
        assert_eq!(discard_other_terms(&mut list, 5), 0);
    }

    #[test]
    fn backoff_doubles_from_the_minimum_and_caps_at_the_interval() {
        let min = Duration::from_secs(15);
        let interval = Duration::from_secs(300);
        let secs: Vec<u64> = (1..=7)
            .map(|n| backoff(n, min, interval, 0.0).as_secs())
            .collect();
        assert_eq!(secs, [15, 30, 60, 120, 240, 300, 300]);
        assert_eq!(backoff(1, min, interval, 0.2), Duration::from_secs(18));
        assert_eq!(backoff(40, min, interval, 0.0), interval);
    }
}
