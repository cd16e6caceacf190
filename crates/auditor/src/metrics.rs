//! The auditor's metrics, defined once (`operations.md` §2 names where the meaning is unchanged).
//!
//! | Name | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `data_manager_audit_cycle_seconds` | histogram | – | duration of a cycle (read, check, write) |
//! | `data_manager_audit_cycles_total` | counter | `outcome` = ok / source_error / sink_error / fenced | cycles by outcome |
//! | `data_manager_audit_findings` | gauge | `check`, `severity` | findings of the last successful cycle |
//! | `data_manager_audit_health_score` | gauge | `symbol`, `timeframe` | quality score of the last cycle |
//! | `data_manager_audit_last_success_timestamp_seconds` | gauge | – | Unix time of the last successful cycle |
//! | `data_manager_audit_leader_status` | gauge | – | 1 while this process leads and audits |
//! | `data_manager_audit_pending_cycles` | gauge | – | cycles whose Mongo write is still owed |

use std::collections::BTreeMap;

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

pub use scheduler::Outcome;

/// The cycle metrics the scheduler records.
pub const CYCLE: scheduler::CycleMetrics = scheduler::CycleMetrics {
    cycle_seconds: CYCLE_SECONDS,
    cycles: CYCLES,
    last_success: LAST_SUCCESS,
    leader_status: LEADER_STATUS,
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

/// Publishes the findings and scores of a cycle's audit.
pub fn results(reports: &[DatasetReport]) {
    for ((check, severity), n) in finding_counts(reports) {
        metrics::gauge!(FINDINGS, "check" => check.as_str(), "severity" => severity.as_str())
            .set(n as f64);
    }
    for r in reports {
        if let Some(s) = r.scores {
            metrics::gauge!(HEALTH_SCORE, "symbol" => r.symbol.clone(), "timeframe" => r.timeframe.label())
                .set(s.quality);
        }
    }
}
