//! The `trades` entries of `dm-auditor once --json`: one per trades dataset, with its counts
//! and findings (times RFC 3339).

use serde::Serialize;

use crate::finding::rfc3339;
use crate::output::FindingOut;
use crate::trades::reconcile::{TradesCounts, TradesReport};

/// One trades dataset.
#[derive(Debug, Serialize)]
pub struct TradesOut {
    /// Symbol.
    pub symbol: String,
    /// `trades_<SYMBOL>`.
    pub dataset_id: String,
    /// Always `trades`.
    pub timeframe: &'static str,
    /// Status.
    pub status: &'static str,
    /// Reference klines timeframe.
    pub reference_timeframe: &'static str,
    /// Window start.
    pub window_start: String,
    /// Window end.
    pub window_end: String,
    /// 100 × matched / expected trades.
    pub completeness: Option<f64>,
    /// Exact counts.
    pub counts: CountsOut,
    /// Findings.
    pub findings: Vec<FindingOut>,
    /// The read error, for `read_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The counts of [`TradesCounts`], by name.
#[derive(Debug, Serialize)]
#[allow(missing_docs)]
pub struct CountsOut {
    pub candles: i64,
    pub reference_candles: i64,
    pub expected_trades: i64,
    pub stored_trades: i64,
    pub missing_trades: i64,
    pub excess_trades: i64,
    pub unreferenced_trades: i64,
    pub undecodable_rows: i64,
    pub short_candles: i64,
    pub ms_collision_candles: i64,
    pub volume_mismatch_candles: i64,
    pub clamped_rows: i64,
    pub colliding_ids: i64,
}

impl From<TradesCounts> for CountsOut {
    fn from(c: TradesCounts) -> CountsOut {
        CountsOut {
            candles: c.candles,
            reference_candles: c.reference_candles,
            expected_trades: c.expected_trades,
            stored_trades: c.stored_trades,
            missing_trades: c.missing_trades,
            excess_trades: c.excess_trades,
            unreferenced_trades: c.unreferenced_trades,
            undecodable_rows: c.undecodable_rows,
            short_candles: c.short_candles,
            ms_collision_candles: c.ms_collision_candles,
            volume_mismatch_candles: c.volume_mismatch_candles,
            clamped_rows: c.clamped_rows,
            colliding_ids: c.colliding_ids,
        }
    }
}

/// The entries of a cycle's trades reports.
pub fn output(reports: &[TradesReport]) -> Vec<TradesOut> {
    reports
        .iter()
        .map(|r| TradesOut {
            symbol: r.symbol.clone(),
            dataset_id: r.dataset_id(),
            timeframe: super::documents::TRADES_TIMEFRAME,
            status: r.status.as_str(),
            reference_timeframe: r.params.reference.label(),
            window_start: rfc3339(r.params.start()),
            window_end: rfc3339(r.params.end()),
            completeness: r.completeness.filter(|x| x.is_finite()),
            counts: r.counts.into(),
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
            error: r.error.clone(),
        })
        .collect()
}
