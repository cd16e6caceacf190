//! What every calculator returns: a metric document's fields and metadata, or the reason it was
//! skipped. The formulas behind each field are in `docs/analytics.md`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// The metrics, each written to its own MongoDB collection (`analytics_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// How much the price moves: rolling standard deviation of returns, annualised, plus the
    /// Parkinson and Garman–Klass range estimators, over 30 days.
    Volatility,
    /// Traded volume over 24 hours: total, SMA, EMA and the last candle's spike against the
    /// median.
    Volume,
    /// Direction of the price over 30 days: SMA, EMA and WMA of close, rate of change,
    /// share of rising candles and the SMA 20/50 crossover.
    Trend,
    /// How far the last close is from its recent mean: Bollinger bands, z-score, range index
    /// and lag-1 autocorrelation, over 30 days.
    Deviation,
    /// Recurring patterns over 90 days of `1h`: mean close per hour and weekday, the dominant
    /// cycle and the entropy of the price distribution.
    Seasonality,
    /// Bid-ask spread and depth from an order-book snapshot; disabled, as no order-book source
    /// exists yet.
    Spread,
    /// How each symbol moves with the others on `1h` over 30 days (per symbol: its row of the
    /// Pearson matrix, rolling correlation, lag and volatility correlation against a benchmark).
    Correlation,
    /// A market regime label (e.g. `breakout_phase`) classified by thresholds from the same
    /// cycle's volatility, volume and trend.
    Regime,
}

impl Kind {
    /// Every kind, in one fixed order (volatility first, regime last).
    pub const ALL: [Kind; 8] = [
        Kind::Volatility,
        Kind::Volume,
        Kind::Trend,
        Kind::Deviation,
        Kind::Seasonality,
        Kind::Spread,
        Kind::Correlation,
        Kind::Regime,
    ];

    /// The metric's name (`volatility`), a key of the `compute` output and a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Volatility => "volatility",
            Kind::Volume => "volume",
            Kind::Trend => "trend",
            Kind::Deviation => "deviation",
            Kind::Seasonality => "seasonality",
            Kind::Spread => "spread",
            Kind::Correlation => "correlation",
            Kind::Regime => "regime",
        }
    }

    /// The collection (`analytics_volatility`).
    pub const fn collection(self) -> &'static str {
        match self {
            Kind::Volatility => "analytics_volatility",
            Kind::Volume => "analytics_volume",
            Kind::Trend => "analytics_trend",
            Kind::Deviation => "analytics_deviation",
            Kind::Seasonality => "analytics_seasonality",
            Kind::Spread => "analytics_spread",
            Kind::Correlation => "analytics_correlation",
            Kind::Regime => "analytics_regime",
        }
    }
}

/// The collection of the full correlation matrix, one document per cycle across all symbols.
pub const MATRIX_COLLECTION: &str = "analytics_correlation_matrix";

/// Why a metric produced no document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Fewer candles than the metric's minimum.
    TooFewCandles,
    /// Correlation: fewer than two symbols qualify.
    TooFewSymbols,
    /// Correlation: the join on timestamp left fewer than 20 rows.
    TooFewJoinedRows,
    /// Regime: the same cycle has no volatility or volume result.
    MissingInputs,
    /// The symbol's candles could not be read (the server answered, the read failed twice).
    ReadError,
    /// The timeframe's table lacks columns the read needs.
    SchemaMismatch,
    /// A row in the symbol's window did not decode (a NULL or zero date, a value out of range):
    /// a series with a hole would give wrong statistics.
    UndecodableRow,
    /// Correlation matrix: the document would pass MongoDB's 16 MiB document limit (it grows
    /// with the square of the symbols); the per-symbol correlation documents are still written.
    TooLarge,
}

impl Skip {
    /// Every reason.
    pub const ALL: [Skip; 8] = [
        Skip::TooFewCandles,
        Skip::TooFewSymbols,
        Skip::TooFewJoinedRows,
        Skip::MissingInputs,
        Skip::ReadError,
        Skip::SchemaMismatch,
        Skip::UndecodableRow,
        Skip::TooLarge,
    ];

    /// The metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Skip::TooFewCandles => "too_few_candles",
            Skip::TooFewSymbols => "too_few_symbols",
            Skip::TooFewJoinedRows => "too_few_joined_rows",
            Skip::MissingInputs => "missing_inputs",
            Skip::ReadError => "read_error",
            Skip::SchemaMismatch => "schema_mismatch",
            Skip::UndecodableRow => "undecodable_row",
            Skip::TooLarge => "too_large",
        }
    }
}

/// `metadata` without `computed_at` (which is stamped when the document is written).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// `method`.
    pub method: &'static str,
    /// `window` (`"30d"`).
    pub window: &'static str,
    /// `parameters`.
    pub parameters: Map<String, Value>,
    /// `completeness`, capped to 0..100.
    pub completeness: f64,
    /// `options`: the non-default options (`ANALYTICS_*`) that shaped this document.
    pub options: Map<String, Value>,
}

/// One metric document's content: its fields in documented order, the input's newest open time
/// and the metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDoc {
    /// Which metric.
    pub kind: Kind,
    /// The open time of the newest input candle.
    pub timestamp: DateTime<Utc>,
    /// The metric's fields (undefined values already 0 or null, never NaN).
    pub fields: Map<String, Value>,
    /// The metadata.
    pub metadata: Metadata,
}

/// Completeness n / divisor × 100, capped to 0..100 so a document is never refused for it.
pub fn completeness(n: usize, divisor: f64) -> f64 {
    (n as f64 / divisor * 100.0).clamp(0.0, 100.0)
}

/// A JSON number for a defined value, null for NaN/±∞.
pub fn num_or_null(x: f64) -> Value {
    if x.is_finite() {
        Value::from(x)
    } else {
        Value::Null
    }
}

/// A JSON number, 0.0 for NaN/±∞.
pub fn num_or_zero(x: f64) -> Value {
    Value::from(if x.is_finite() { x } else { 0.0 })
}

/// An RFC 3339 UTC instant, seconds precision unless sub-second.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl MetricDoc {
    /// The `metadata` object, with `computed_at` as given.
    pub fn metadata_json(&self, computed_at: Value) -> Map<String, Value> {
        let m = &self.metadata;
        let mut out = Map::new();
        out.insert("method".into(), m.method.into());
        out.insert("window".into(), m.window.into());
        out.insert("parameters".into(), Value::Object(m.parameters.clone()));
        out.insert("completeness".into(), num_or_zero(m.completeness));
        out.insert("computed_at".into(), computed_at);
        out.insert("options".into(), Value::Object(m.options.clone()));
        out
    }

    /// The `compute` output object: the metric's fields plus `metadata`.
    pub fn to_json(&self, computed_at: DateTime<Utc>) -> Value {
        let mut out = self.fields.clone();
        out.insert(
            "metadata".into(),
            Value::Object(self.metadata_json(rfc3339(computed_at).into())),
        );
        Value::Object(out)
    }
}

/// Builds a JSON object from `(key, value)` pairs in order.
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
