//! One stored candle, read exactly: decimals stay decimals, DATETIMEs become UTC instants once.

use chrono::{DateTime, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// A row of the extractor's `klines_<suffix>` table, minus the derived columns we do not use.
#[derive(Debug, Clone, PartialEq)]
pub struct Kline {
    /// `<SYMBOL>_<open_time epoch ms>`.
    pub id: String,
    /// Equals `open_time` in well-formed rows.
    pub timestamp: DateTime<Utc>,
    /// Candle open.
    pub open_time: DateTime<Utc>,
    /// As stored: open + interval, or one second less (rounding vs truncation).
    pub close_time: DateTime<Utc>,
    /// Binance notation of the interval.
    pub interval: String,
    /// Open price.
    pub open: Decimal,
    /// High price.
    pub high: Decimal,
    /// Low price.
    pub low: Decimal,
    /// Close price.
    pub close: Decimal,
    /// Base-asset volume.
    pub volume: Decimal,
    /// Quote-asset volume.
    pub quote_asset_volume: Decimal,
    /// Number of trades.
    pub number_of_trades: i64,
    /// Taker-buy base volume.
    pub taker_buy_base: Decimal,
    /// Taker-buy quote volume.
    pub taker_buy_quote: Decimal,
    /// When the extractor wrote the row.
    pub extracted_at: DateTime<Utc>,
}

/// Reads a naive MySQL DATETIME as the UTC instant it denotes: the extractor stores UTC wall-clock
/// time without a zone.
pub fn utc(naive: NaiveDateTime) -> DateTime<Utc> {
    naive.and_utc()
}

/// The naive UTC literal for a query bound.
pub fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

/// A decimal as the nearest f64, for statistics and storage. Goes through the decimal string:
/// `Decimal::to_f64` is not correctly rounded (12345678901.12345678 comes out one ulp off).
pub fn to_f64(d: Decimal) -> f64 {
    d.to_string()
        .parse()
        .unwrap_or_else(|_| d.to_f64().unwrap_or(f64::NAN))
}
