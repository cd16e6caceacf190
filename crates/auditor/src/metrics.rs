//! The auditor's metrics, defined once; names are kept from the old service where the meaning is
//! unchanged, so its dashboards keep working (`docs/metrics.md`).
//!
//! | Name | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `data_manager_audit_cycle_seconds` | histogram | – | duration of a cycle (read, check, write) |
//! | `data_manager_audit_cycles_total` | counter | `outcome` = ok / source_error / sink_error / fenced / stopped | cycles by outcome |
//! | `data_manager_audit_findings` | gauge | `check`, `severity` | findings of the last successful cycle |
//! | `data_manager_audit_health_score` | gauge | `symbol`, `timeframe` | quality score of the last cycle |
//! | `data_manager_audit_last_success_timestamp_seconds` | gauge | – | Unix time of the last successful cycle |
//! | `data_manager_audit_leader_status` | gauge | – | 1 while this process leads and audits |
//! | `data_manager_audit_pending_cycles` | gauge | – | cycles whose Mongo write is still owed |
//! | `data_manager_audit_dataset_problems_total` | counter | `kind` = undecodable_row / future_row / schema_mismatch / read_error | rows (undecodable) or datasets (the others) per cycle |
//! | `data_manager_audit_fenced_total` | counter | – | terms ended by a fenced write (each makes the replica step down) |
//!
//! The findings and score gauges belong to the leader: when its term ends they are withdrawn
//! (findings 0, scores NaN).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::dataset::DatasetReport;
use crate::finding::{Check, Severity};

/// Cycle duration histogram.
pub const CYCLE_SECONDS: &str = "data_manager_audit_cycle_seconds";
/// Cycles by outcome.
pub const CYCLES: &str = "data_manager_audit_cycles_total";
/// Findings of the last cycle by check and severity.
pub const FINDINGS: &str = "data_manager_audit_findings";
/// Quality score per dataset.
pub const HEALTH_SCORE: &str = "data_manager_audit_health_score";
/// Unix time of the last successful cycle.
pub const LAST_SUCCESS: &str = "data_manager_audit_last_success_timestamp_seconds";
/// 1 while leading.
pub const LEADER_STATUS: &str = "data_manager_audit_leader_status";
/// Cycles whose results still have to be written.
pub const PENDING_CYCLES: &str = "data_manager_audit_pending_cycles";
/// Undecodable rows and datasets that could not be (fully) audited, by kind.
pub const DATASET_PROBLEMS: &str = "data_manager_audit_dataset_problems_total";
/// Terms ended by a fenced write.
pub const FENCED: &str = "data_manager_audit_fenced_total";

pub use elected_loop::Outcome;

/// The cycle metrics the scheduler records.
pub const CYCLE: elected_loop::CycleMetrics = elected_loop::CycleMetrics {
    cycle_seconds: CYCLE_SECONDS,
    cycles: CYCLES,
    last_success: LAST_SUCCESS,
    leader_status: LEADER_STATUS,
    fenced: FENCED,
};

/// Registers help of this binary's own metrics (the scheduler describes and zeroes the cycle series).
pub fn describe() {
    metrics::describe_gauge!(
        FINDINGS,
        "Findings of the last successful cycle by check and severity"
    );
    metrics::describe_gauge!(
        HEALTH_SCORE,
        "Quality score (0-100) per dataset in the last cycle"
    );
    metrics::describe_gauge!(PENDING_CYCLES, "Cycles whose Mongo write is still owed");
    metrics::describe_counter!(
        DATASET_PROBLEMS,
        "Undecodable rows, and datasets with future rows, a schema mismatch or a read error"
    );
}

/// Findings per (check, severity) over `reports`, every pair present (zeros included).
pub fn finding_counts(reports: &[DatasetReport]) -> BTreeMap<(Check, Severity), u64> {
    let mut counts: BTreeMap<(Check, Severity), u64> = BTreeMap::new();
    for c in Check::ALL {
        for s in [Severity::Info, Severity::Medium, Severity::High] {
            counts.insert((c, s), 0);
        }
    }
    for f in reports.iter().flat_map(|r| &r.findings) {
        *counts.entry((f.check, f.severity)).or_default() += 1;
    }
    counts
}

/// The datasets whose score gauge this process has set, so that [`withdraw`] can clear them.
static SCORED: Mutex<BTreeSet<(String, &'static str)>> = Mutex::new(BTreeSet::new());

/// Withdraws the per-dataset results when this replica stops leading: every findings gauge
/// to 0 and every score gauge to NaN ("no value": ignored by `max`/`min` aggregations and
/// false in every comparison), so only the leader's results drive dashboards and alerts.
pub fn withdraw() {
    for c in Check::ALL {
        for s in [Severity::Info, Severity::Medium, Severity::High] {
            metrics::gauge!(FINDINGS, "check" => c.as_str(), "severity" => s.as_str()).set(0.0);
        }
    }
    let scored = SCORED
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    for (symbol, timeframe) in scored {
        metrics::gauge!(HEALTH_SCORE, "symbol" => symbol, "timeframe" => timeframe).set(f64::NAN);
    }
}

/// Sets a dataset's score gauge and remembers it, so that [`withdraw`] clears it when the
/// term ends (the klines datasets and the trades datasets alike).
pub fn set_score(symbol: &str, timeframe: &'static str, value: f64) {
    metrics::gauge!(HEALTH_SCORE, "symbol" => symbol.to_owned(), "timeframe" => timeframe)
        .set(value);
    if let Ok(mut scored) = SCORED.lock() {
        scored.insert((symbol.to_owned(), timeframe));
    }
}

/// Publishes the findings and scores of a cycle's audit.
pub fn results(reports: &[DatasetReport]) {
    for ((check, severity), n) in finding_counts(reports) {
        metrics::gauge!(FINDINGS, "check" => check.as_str(), "severity" => severity.as_str())
            .set(n as f64);
    }
    for r in reports {
        if let Some(s) = r.scores {
            set_score(&r.symbol, r.timeframe.label(), s.quality);
        }
    }
    for (problem, n) in problem_counts(reports) {
        metrics::counter!(DATASET_PROBLEMS, "kind" => problem.as_str()).increment(n);
    }
}

/// Per cycle: undecodable rows, and datasets with rows from the future, a schema mismatch or a
/// read error.
pub fn problem_counts(reports: &[DatasetReport]) -> BTreeMap<Check, u64> {
    let mut counts = BTreeMap::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        if matches!(
            f.check,
            Check::UndecodableRow | Check::FutureRow | Check::SchemaMismatch | Check::ReadError
        ) {
            *counts.entry(f.check).or_default() += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DatasetAudit, Params};
    use crate::score::Profile;
    use store::testing::{at, candle};

    fn report() -> DatasetReport {
        let tf = "1h".parse().expect("tf");
        let p = Params {
            now: at(2025, 10, 21, 14, 30, 0),
            window: 86_400,
            timeframe: tf,
            tolerance: 60,
            max_lag: 7_200,
            profile: Profile::V3,
            max_row_findings: 100,
        };
        let mut a = DatasetAudit::new("BTCUSDT", p, None);
        for h in [0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13] {
            a.push(candle("BTCUSDT", tf, at(2025, 10, 21, h, 0, 0)));
        }
        a.finish()
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
    }

    #[test]
    fn a_replica_whose_term_ended_exports_no_findings_and_no_scores() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let r = report();
        assert_eq!(r.findings[0].check, Check::Gap);
        metrics::with_local_recorder(&recorder, || results(&[r]));
        let text = handle.render();
        let high_gaps = r#"data_manager_audit_findings{check="gap",severity="high"}"#;
        let score = r#"data_manager_audit_health_score{symbol="BTCUSDT",timeframe="1h"}"#;
        assert_eq!(line(&text, high_gaps), format!("{high_gaps} 1"));
        assert!(!line(&text, score).ends_with("NaN"));

        metrics::with_local_recorder(&recorder, withdraw);
        let text = handle.render();
        assert_eq!(line(&text, high_gaps), format!("{high_gaps} 0"));
        assert_eq!(line(&text, score), format!("{score} NaN"));
    }
}
