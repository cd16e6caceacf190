//! The JSON that `dm-auditor once --json` prints: one object, every dataset with its health and
//! findings (times RFC 3339, non-finite numbers as null).

use serde::Serialize;

use crate::dataset::DatasetReport;
use crate::finding::rfc3339;

/// The printed object.
#[derive(Debug, Serialize)]
pub struct Output {
    /// One entry per audited dataset.
    pub datasets: Vec<DatasetOut>,
    /// One entry per trades dataset (absent when `AUDIT_TRADES` is off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trades: Vec<crate::trades::output::TradesOut>,
}

/// One dataset.
#[derive(Debug, Serialize)]
pub struct DatasetOut {
    /// Symbol.
    pub symbol: String,
    /// Timeframe.
    pub timeframe: String,
    /// Status: `ok`, `warn`, `critical`, `no_data`, `not_extracted`, `table_missing`, ….
    pub status: &'static str,
    /// Health.
    pub health: HealthOut,
    /// Findings.
    pub findings: Vec<FindingOut>,
}

/// A dataset's health.
#[derive(Debug, Serialize)]
pub struct HealthOut {
    /// Filled share of due slots, %.
    pub completeness: Option<f64>,
    /// Seconds since the newest closed candle closed.
    pub freshness_seconds: Option<i64>,
    /// Weighted score.
    pub quality_score: Option<f64>,
    /// Consistency score.
    pub consistency_score: Option<f64>,
    /// Freshness score.
    pub freshness_score: Option<f64>,
    /// Score profile.
    pub score_profile: &'static str,
    /// Window start.
    pub window_start: String,
    /// Window end (the audit instant).
    pub window_end: String,
    /// L.
    pub max_lag_seconds: i64,
    /// Due slots.
    pub due_slots: i64,
    /// Filled due slots.
    pub filled_slots: i64,
    /// Rows read.
    pub rows_in_window: i64,
    /// Unfilled due slots.
    pub missing_candles: i64,
    /// Gaps.
    pub gaps_count: i64,
    /// Distinct duplicated open times.
    pub duplicate_timestamps: i64,
    /// Surplus rows.
    pub duplicate_rows: i64,
    /// Rows failing a row check.
    pub invalid_rows: i64,
    /// close_time convention.
    pub close_time_convention: &'static str,
    /// Row findings left out by the cap.
    pub row_findings_suppressed: u64,
}

/// A finding. Row-level findings carry the row's open time in `start`.
#[derive(Debug, Serialize)]
pub struct FindingOut {
    /// The kind (`gap`, `duplicate`, `ohlc_violation`, …).
    pub check: &'static str,
    /// Severity.
    pub severity: &'static str,
    /// Gap start or the row's open time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Gap end (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Gap length in candles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_candles: Option<i64>,
    /// Gap length or staleness in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Text.
    pub details: String,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Builds the output of a cycle.
pub fn output(reports: &[DatasetReport]) -> Output {
    Output {
        datasets: reports
            .iter()
            .map(|r| {
                let s = r.scores;
                let c = r.counts;
                DatasetOut {
                    symbol: r.symbol.clone(),
                    timeframe: r.timeframe.label().to_owned(),
                    status: r.status.as_str(),
                    health: HealthOut {
                        completeness: s.and_then(|s| s.completeness).and_then(finite),
                        freshness_seconds: r.freshness_seconds,
                        quality_score: s.and_then(|s| finite(s.quality)),
                        consistency_score: s.and_then(|s| finite(s.consistency)),
                        freshness_score: s.and_then(|s| finite(s.freshness)),
                        score_profile: r.params.profile.as_str(),
                        window_start: rfc3339(r.params.start()),
                        window_end: rfc3339(r.params.now),
                        max_lag_seconds: r.params.max_lag,
                        due_slots: c.due_slots,
                        filled_slots: c.filled_slots,
                        rows_in_window: c.rows_in_window,
                        missing_candles: c.missing_candles,
                        gaps_count: c.gaps_count,
                        duplicate_timestamps: c.duplicate_timestamps,
                        duplicate_rows: c.duplicate_rows,
                        invalid_rows: c.invalid_rows,
                        close_time_convention: r.convention.as_str(),
                        row_findings_suppressed: r.row_findings_suppressed,
                    },
                    findings: r
                        .findings
                        .iter()
                        .map(|f| FindingOut {
                            check: f.check.as_str(),
                            severity: f.severity.as_str(),
                            start: f.start.map(rfc3339),
                            end: f.end.map(rfc3339),
                            missing_candles: f.missing_candles,
                            duration_seconds: f.duration_seconds,
                            details: f.details.clone(),
                        })
                        .collect(),
                }
            })
            .collect(),
        trades: Vec::new(),
    }
}
