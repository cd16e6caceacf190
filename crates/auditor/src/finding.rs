//! What an audit reports: finding kinds, severities and the finding record with its stable key.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The kind of a finding (`docs/audit-rules.md`). `as_str` is the JSON `check`, the Mongo `kind`
/// and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// A run of consecutive due grid slots that no row fills.
    Gap,
    /// The newest closed candle closed longer ago than the allowed lag L.
    Stale,
    /// The symbol exists but has no row in the window.
    NoData,
    /// An open time stored more than once.
    Duplicate,
    /// high below max(open, close), low above min(open, close), or high below low.
    OhlcViolation,
    /// An open, high, low or close that is not positive.
    BadPrice,
    /// A negative volume or trade count, or a taker-buy volume above its total.
    BadVolume,
    /// open_time off the epoch-aligned grid, or `timestamp` ≠ open_time.
    Misaligned,
    /// close_time neither open + I (MySQL rounds) nor open + I − 1 s (MariaDB truncates).
    CloseTimeMismatch,
    /// id ≠ `<symbol>_<open ms>` (not reported for a duplicate's surplus rows).
    IdMismatch,
    /// `interval` ≠ the table's timeframe.
    IntervalMismatch,
    /// Written before the candle closed; the extractor's insert-or-ignore never corrects it.
    PartialCandle,
    /// The table has no row for the symbol at all.
    NotExtracted,
    /// The timeframe's table does not exist (the auditor never creates it).
    TableMissing,
    /// A row that could not be decoded (a NULL or zero date where a value is required, or a
    /// value out of range); it is left out of every other check.
    UndecodableRow,
    /// Rows opening an interval or more after the audit instant.
    FutureRow,
    /// The table lacks columns the audit reads.
    SchemaMismatch,
    /// Reading the dataset failed (after one retry).
    ReadError,
    /// Fewer trades stored than the reference candles counted (trades datasets).
    TradesMissing,
    /// More trades stored than the reference candles counted (trades datasets).
    TradesExcess,
    /// A candle's stored trades are all there but their quantities do not add up to its volumes.
    TradeVolumeMismatch,
    /// The table holds the clamped `trade_id` 2,147,483,647 (trades datasets).
    TradeIdClamped,
    /// Other symbols hold trade ids inside this symbol's id range (trades datasets).
    TradeIdCollision,
    /// Candles with more trades than distinct milliseconds stored (trades datasets).
    TradeMsCollision,
    /// Trades rows that do not decode (trades datasets).
    UndecodableTrade,
}

impl Check {
    /// Every kind, for metric descriptions and docs.
    pub const ALL: [Check; 25] = [
        Check::Gap,
        Check::Stale,
        Check::NoData,
        Check::Duplicate,
        Check::OhlcViolation,
        Check::BadPrice,
        Check::BadVolume,
        Check::Misaligned,
        Check::CloseTimeMismatch,
        Check::IdMismatch,
        Check::IntervalMismatch,
        Check::PartialCandle,
        Check::NotExtracted,
        Check::TableMissing,
        Check::UndecodableRow,
        Check::FutureRow,
        Check::SchemaMismatch,
        Check::ReadError,
        Check::TradesMissing,
        Check::TradesExcess,
        Check::TradeVolumeMismatch,
        Check::TradeIdClamped,
        Check::TradeIdCollision,
        Check::TradeMsCollision,
        Check::UndecodableTrade,
    ];

    /// The snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Check::Gap => "gap",
            Check::Stale => "stale",
            Check::NoData => "no_data",
            Check::Duplicate => "duplicate",
            Check::OhlcViolation => "ohlc_violation",
            Check::BadPrice => "bad_price",
            Check::BadVolume => "bad_volume",
            Check::Misaligned => "misaligned",
            Check::CloseTimeMismatch => "close_time_mismatch",
            Check::IdMismatch => "id_mismatch",
            Check::IntervalMismatch => "interval_mismatch",
            Check::PartialCandle => "partial_candle",
            Check::NotExtracted => "not_extracted",
            Check::TableMissing => "table_missing",
            Check::UndecodableRow => "undecodable_row",
            Check::FutureRow => "future_row",
            Check::SchemaMismatch => "schema_mismatch",
            Check::ReadError => "read_error",
            Check::TradesMissing => "trades_missing",
            Check::TradesExcess => "trades_excess",
            Check::TradeVolumeMismatch => "trade_volume_mismatch",
            Check::TradeIdClamped => "trade_id_clamped",
            Check::TradeIdCollision => "trade_id_collision",
            Check::TradeMsCollision => "trade_ms_collision",
            Check::UndecodableTrade => "undecodable_trade",
        }
    }

    /// Whether the finding is about one row (keyed by its open time, and capped per cycle).
    pub const fn is_row_level(self) -> bool {
        matches!(
            self,
            Check::Duplicate
                | Check::OhlcViolation
                | Check::BadPrice
                | Check::BadVolume
                | Check::Misaligned
                | Check::CloseTimeMismatch
                | Check::IdMismatch
                | Check::IntervalMismatch
                | Check::PartialCandle
                | Check::UndecodableRow
        )
    }
}

/// How bad a finding is; the dataset status follows the worst one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational (missing table or symbol).
    Info,
    /// Worth a look.
    Medium,
    /// Data is wrong or missing.
    High,
}

impl Severity {
    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One finding about one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The kind.
    pub check: Check,
    /// The severity.
    pub severity: Severity,
    /// Gaps: the first missing slot (stable across cycles). Row findings: the row's open time.
    pub start: Option<DateTime<Utc>>,
    /// Gaps: the last missing slot + I (exclusive).
    pub end: Option<DateTime<Utc>>,
    /// Gaps: the number of missing candles.
    pub missing_candles: Option<i64>,
    /// Gaps: missing_candles × I; stale: the freshness in seconds.
    pub duration_seconds: Option<i64>,
    /// Human-readable text.
    pub details: String,
}

impl Finding {
    /// A finding with only a kind, a severity and text (dataset-level kinds).
    pub fn dataset(check: Check, severity: Severity, details: String) -> Finding {
        Finding {
            check,
            severity,
            start: None,
            end: None,
            missing_candles: None,
            duration_seconds: None,
            details,
        }
    }

    /// The stable key: symbol, timeframe, kind, plus the start for gaps and the open time
    /// for row findings. Used as the Mongo `_id`, so re-audits and new leaders upsert in place.
    pub fn key(&self, symbol: &str, timeframe: &str) -> String {
        match self.start {
            Some(t) if self.check == Check::Gap || self.check.is_row_level() => format!(
                "{symbol}|{timeframe}|{}|{}",
                self.check.as_str(),
                rfc3339(t)
            ),
            _ => format!("{symbol}|{timeframe}|{}", self.check.as_str()),
        }
    }
}

/// `2025-10-21T05:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
