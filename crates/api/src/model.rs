//! The API's response bodies and the closed sets of values its parameters accept, as serde and
//! OpenAPI types. The auditor and analytics write these values; the API only reads them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A dataset's health status, as the auditor writes it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No finding above `info`.
    Ok,
    /// A `medium` finding.
    Warn,
    /// A `high` finding.
    Critical,
    /// The symbol has no row in the audit window.
    NoData,
    /// The symbol was never extracted into this timeframe's table.
    NotExtracted,
    /// The timeframe's table does not exist.
    TableMissing,
}

impl Status {
    /// Every status, worst first (the order the page's legend uses).
    pub const ALL: [Status; 6] = [
        Status::Critical,
        Status::Warn,
        Status::NoData,
        Status::NotExtracted,
        Status::TableMissing,
        Status::Ok,
    ];

    /// The stored name (`critical`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Critical => "critical",
            Status::NoData => "no_data",
            Status::NotExtracted => "not_extracted",
            Status::TableMissing => "table_missing",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A finding's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational (a missing table or symbol).
    Info,
    /// Degraded data.
    Medium,
    /// Data a consumer should not trust.
    High,
}

impl Severity {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// A finding's kind (the auditor's check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Kind {
    Gap,
    Stale,
    NoData,
    Duplicate,
    OhlcViolation,
    BadPrice,
    BadVolume,
    Misaligned,
    CloseTimeMismatch,
    IdMismatch,
    IntervalMismatch,
    PartialCandle,
    NotExtracted,
    TableMissing,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 14] = [
        Kind::Gap,
        Kind::Stale,
        Kind::NoData,
        Kind::Duplicate,
        Kind::OhlcViolation,
        Kind::BadPrice,
        Kind::BadVolume,
        Kind::Misaligned,
        Kind::CloseTimeMismatch,
        Kind::IdMismatch,
        Kind::IntervalMismatch,
        Kind::PartialCandle,
        Kind::NotExtracted,
        Kind::TableMissing,
    ];

    /// The stored name (`ohlc_violation`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gap => "gap",
            Kind::Stale => "stale",
            Kind::NoData => "no_data",
            Kind::Duplicate => "duplicate",
            Kind::OhlcViolation => "ohlc_violation",
            Kind::BadPrice => "bad_price",
            Kind::BadVolume => "bad_volume",
            Kind::Misaligned => "misaligned",
            Kind::CloseTimeMismatch => "close_time_mismatch",
            Kind::IdMismatch => "id_mismatch",
            Kind::IntervalMismatch => "interval_mismatch",
            Kind::PartialCandle => "partial_candle",
            Kind::NotExtracted => "not_extracted",
            Kind::TableMissing => "table_missing",
        }
    }
}

/// A timeframe the schedulers accept (`klines_<suffix>` tables).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[allow(missing_docs)]
pub enum Timeframe {
    #[serde(rename = "1m")]
    M1,
    #[serde(rename = "3m")]
    M3,
    #[serde(rename = "5m")]
    M5,
    #[serde(rename = "15m")]
    M15,
    #[serde(rename = "30m")]
    M30,
    #[serde(rename = "1h")]
    H1,
    #[serde(rename = "2h")]
    H2,
    #[serde(rename = "4h")]
    H4,
    #[serde(rename = "6h")]
    H6,
    #[serde(rename = "8h")]
    H8,
    #[serde(rename = "12h")]
    H12,
    #[serde(rename = "1d")]
    D1,
}

impl Timeframe {
    /// Every timeframe, shortest first.
    pub const ALL: [Timeframe; 12] = [
        Timeframe::M1,
        Timeframe::M3,
        Timeframe::M5,
        Timeframe::M15,
        Timeframe::M30,
        Timeframe::H1,
        Timeframe::H2,
        Timeframe::H4,
        Timeframe::H6,
        Timeframe::H8,
        Timeframe::H12,
        Timeframe::D1,
    ];

    /// The label (`1h`).
    pub const fn label(self) -> &'static str {
        match self {
            Timeframe::M1 => "1m",
            Timeframe::M3 => "3m",
            Timeframe::M5 => "5m",
            Timeframe::M15 => "15m",
            Timeframe::M30 => "30m",
            Timeframe::H1 => "1h",
            Timeframe::H2 => "2h",
            Timeframe::H4 => "4h",
            Timeframe::H6 => "6h",
            Timeframe::H8 => "8h",
            Timeframe::H12 => "12h",
            Timeframe::D1 => "1d",
        }
    }

    /// The timeframe of a stored label.
    pub fn parse(s: &str) -> Option<Timeframe> {
        Timeframe::ALL.into_iter().find(|t| t.label() == s)
    }
}

/// An analytics metric (one collection each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Metric {
    Volatility,
    Volume,
    Trend,
    Deviation,
    Seasonality,
    Correlation,
    Regime,
}

impl Metric {
    /// The metric's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Metric::Volatility => "volatility",
            Metric::Volume => "volume",
            Metric::Trend => "trend",
            Metric::Deviation => "deviation",
            Metric::Seasonality => "seasonality",
            Metric::Correlation => "correlation",
            Metric::Regime => "regime",
        }
    }

    /// Its collection (`analytics_volatility`).
    pub fn collection(self) -> String {
        format!("analytics_{}", self.as_str())
    }
}

/// One dataset's latest health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DatasetSummary {
    /// The symbol (`BTCUSDT`).
    pub symbol: String,
    /// The timeframe (`1h`).
    pub timeframe: Timeframe,
    /// The latest audit's status.
    pub status: Status,
    /// 0–100; null when nothing could be scored.
    pub quality_score: Option<f64>,
    /// 0–100; null when no slot was due.
    pub completeness: Option<f64>,
    /// Seconds since the newest closed candle closed; null when there is none.
    pub freshness_seconds: Option<i64>,
    /// Findings of this dataset not resolved yet.
    pub open_findings: u64,
    /// When the latest audit ran.
    pub audited_at: DateTime<Utc>,
}

/// `GET /v1/datasets`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DatasetList {
    /// By symbol, then timeframe (shortest first).
    pub datasets: Vec<DatasetSummary>,
}

/// One audit of a dataset, in its history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HealthPoint {
    /// When the audit ran.
    pub audited_at: DateTime<Utc>,
    /// Its status.
    pub status: Status,
    /// 0–100 or null.
    pub quality_score: Option<f64>,
    /// 0–100 or null.
    pub completeness: Option<f64>,
    /// 0–100 or null.
    pub consistency_score: Option<f64>,
    /// Seconds, or null.
    pub freshness_seconds: Option<i64>,
    /// Missing candles in the window.
    pub missing_candles: Option<i64>,
    /// Gaps in the window.
    pub gaps_count: Option<i64>,
    /// Rows failing a row check.
    pub invalid_rows: Option<i64>,
    /// The leader term that wrote it.
    pub leader_term: Option<i64>,
}

/// `GET /v1/datasets/{symbol}/{timeframe}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DatasetDetail {
    /// The symbol.
    pub symbol: String,
    /// The timeframe.
    pub timeframe: Timeframe,
    /// The latest audit.
    pub latest: HealthPoint,
    /// Findings not resolved yet.
    pub open_findings: u64,
    /// Start of the history range (inclusive).
    pub from: DateTime<Utc>,
    /// End of the history range (exclusive).
    pub to: DateTime<Utc>,
    /// Audits in the range, newest first, at most `limit`.
    pub history: Vec<HealthPoint>,
}

/// A finding of the auditor.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Finding {
    /// Its stable key (`BTCUSDT|1h|gap|2025-10-21T05:00:00Z`).
    pub id: String,
    /// The symbol.
    pub symbol: String,
    /// The timeframe.
    pub timeframe: Timeframe,
    /// The check that found it.
    pub kind: Kind,
    /// Its severity.
    pub severity: Severity,
    /// What was found, in a sentence.
    pub details: String,
    /// Gaps: first missing slot.
    pub start: Option<DateTime<Utc>>,
    /// Gaps: end of the missing range (exclusive).
    pub end: Option<DateTime<Utc>>,
    /// Row findings: the row's open time.
    pub open_time: Option<DateTime<Utc>>,
    /// The finding's time: a gap's start, a row's open time, or the audit instant (sort key).
    pub timestamp: DateTime<Utc>,
    /// Gaps: missing candles.
    pub missing_candles: Option<i64>,
    /// Gaps: their length; stale: the freshness, in seconds.
    pub duration_seconds: Option<i64>,
    /// The first audit that saw it.
    pub first_seen: Option<DateTime<Utc>>,
    /// The latest audit that saw it.
    pub last_seen: Option<DateTime<Utc>>,
    /// When an audit covering it no longer saw it; null while open.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The leader term that last wrote it.
    pub leader_term: Option<i64>,
}

/// `GET /v1/findings`: one page.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FindingsPage {
    /// Newest `timestamp` first.
    pub findings: Vec<Finding>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One analytics document.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalyticsPoint {
    /// The open time of the newest candle it was computed from.
    pub timestamp: DateTime<Utc>,
    /// When it was computed.
    pub computed_at: Option<DateTime<Utc>>,
    /// The metric's fields (numbers, maps of numbers, strings), as stored.
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// One timeframe's documents of a metric.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalyticsSeries {
    /// The timeframe.
    pub timeframe: Timeframe,
    /// Newest first.
    pub points: Vec<AnalyticsPoint>,
}

/// `GET /v1/analytics/{metric}/{symbol}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AnalyticsResponse {
    /// The metric.
    pub metric: Metric,
    /// The symbol.
    pub symbol: String,
    /// One entry per timeframe that has documents.
    pub series: Vec<AnalyticsSeries>,
}

/// `GET /v1/correlation`: the latest correlation matrix of a timeframe.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CorrelationMatrix {
    /// The timeframe.
    pub timeframe: Timeframe,
    /// The open time of the newest candle it was computed from.
    pub timestamp: DateTime<Utc>,
    /// When it was computed.
    pub computed_at: Option<DateTime<Utc>>,
    /// The symbols, sorted.
    pub symbols: Vec<String>,
    /// ρ per pair of symbols (null when undefined).
    pub matrix: BTreeMap<String, BTreeMap<String, Option<f64>>>,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// A machine-readable reason (`bad_parameter`, `unknown_dataset`, `mongo_unavailable`, …).
    pub reason: String,
    /// The parameter at fault, for `bad_parameter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}
