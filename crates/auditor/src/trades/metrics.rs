//! The trades datasets in the auditor's gauges: their findings are added to
//! `data_manager_audit_findings` (after the klines datasets set it for the cycle), their
//! completeness is `data_manager_audit_health_score{timeframe="trades"}`, and their read errors
//! and undecodable rows count in `data_manager_audit_dataset_problems_total`. Like the klines
//! datasets' gauges, they are withdrawn when the term ends ([`crate::metrics::withdraw`]).

use std::collections::BTreeMap;

use crate::finding::{Check, Severity};
use crate::metrics::{DATASET_PROBLEMS, FINDINGS, set_score};
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

/// Per cycle: the trades datasets with a read error, and their undecodable rows (counted as
/// `undecodable_row`, the kind the klines datasets' undecodable rows count under).
pub fn problem_counts(reports: &[TradesReport]) -> BTreeMap<Check, u64> {
    let mut counts = BTreeMap::new();
    for r in reports {
        if r.findings.iter().any(|f| f.check == Check::ReadError) {
            *counts.entry(Check::ReadError).or_default() += 1;
        }
        let undecodable = u64::try_from(r.counts.undecodable_rows).unwrap_or(0);
        if undecodable > 0 {
            *counts.entry(Check::UndecodableRow).or_default() += undecodable;
        }
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
            set_score(&r.symbol, TRADES_TIMEFRAME, c);
        }
    }
    for (problem, n) in problem_counts(reports) {
        metrics::counter!(DATASET_PROBLEMS, "kind" => problem.as_str()).increment(n);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::trades::reconcile::{Reference, TradesAudit, TradesParams, TradesStatus};

    fn params() -> TradesParams {
        TradesParams {
            now: chrono::Utc
                .with_ymd_and_hms(2025, 10, 21, 14, 30, 0)
                .single()
                .expect("time"),
            window: 3_600,
            reference: "5m".parse().expect("tf"),
            max_lag: 900,
        }
    }

    /// Twelve candles counting 10 trades each, none stored: completeness 0, `trades_missing`.
    fn missing_everything() -> TradesReport {
        let p = params();
        let candles = (0..12).map(|k| {
            (
                p.start() + chrono::Duration::minutes(5 * k),
                Reference {
                    trades: 10,
                    volume: rust_decimal::Decimal::ONE,
                    quote_volume: rust_decimal::Decimal::ONE,
                },
            )
        });
        TradesAudit::new("BTCUSDT", p, candles).finish(&Default::default())
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
    }

    #[test]
    fn read_errors_and_undecodable_rows_count_as_dataset_problems() {
        let err = TradesReport::informational("X", params(), TradesStatus::ReadError, "e".into());
        let mut bad = missing_everything();
        bad.counts.undecodable_rows = 3;
        let counts = problem_counts(&[err, bad]);
        assert_eq!(counts.get(&Check::ReadError), Some(&1));
        assert_eq!(counts.get(&Check::UndecodableRow), Some(&3));
    }

    #[test]
    fn a_replica_whose_term_ended_exports_no_trades_findings_and_no_trades_scores() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let r = missing_everything();
        assert_eq!(r.completeness, Some(0.0));
        metrics::with_local_recorder(&recorder, || {
            crate::metrics::results(&[]);
            results(std::slice::from_ref(&r));
        });
        let text = handle.render();
        let missing = r#"data_manager_audit_findings{check="trades_missing",severity="high"}"#;
        let score = r#"data_manager_audit_health_score{symbol="BTCUSDT",timeframe="trades"}"#;
        assert_eq!(line(&text, missing), format!("{missing} 1"));
        assert_eq!(line(&text, score), format!("{score} 0"));

        metrics::with_local_recorder(&recorder, crate::metrics::withdraw);
        let text = handle.render();
        assert_eq!(line(&text, missing), format!("{missing} 0"));
        assert_eq!(line(&text, score), format!("{score} NaN"));
    }
}
