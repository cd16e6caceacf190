//! The trades datasets in the auditor's gauges: their findings are added to
//! `data_manager_audit_findings` (after the klines datasets set it for the cycle), and their
//! completeness is `data_manager_audit_health_score{timeframe="trades"}`.

use std::collections::BTreeMap;

use crate::finding::{Check, Severity};
use crate::metrics::{FINDINGS, HEALTH_SCORE};
use crate::trades::documents::TRADES_TIMEFRAME;
use crate::trades::reconcile::TradesReport;

/// Findings per (check, severity) over `reports`, only the pairs that occur.
pub fn finding_counts(reports: &[TradesReport]) -> BTreeMap<(Check, Severity), u64> {
    let mut counts = BTreeMap::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        *counts.entry((f.check, f.severity)).or_default() += 1;
    }
    counts
}

/// Publishes a cycle's trades results. Call after [`crate::metrics::results`], which sets
/// every (check, severity) pair for the cycle; this adds the trades datasets' share.
pub fn results(reports: &[TradesReport]) {
    for ((check, severity), n) in finding_counts(reports) {
        metrics::gauge!(FINDINGS, "check" => check.as_str(), "severity" => severity.as_str())
            .increment(n as f64);
    }
    for r in reports {
        if let Some(c) = r.completeness {
            metrics::gauge!(HEALTH_SCORE, "symbol" => r.symbol.clone(), "timeframe" => TRADES_TIMEFRAME)
                .set(c);
        }
    }
}
