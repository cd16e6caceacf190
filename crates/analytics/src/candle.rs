//! The calculators' input: one candle as f64 values and a UTC open time.

use chrono::{DateTime, Utc};

/// One candle as the calculators see it: prices and volume as f64, converted from the stored
/// decimals through their text so each is the correctly rounded nearest double.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candle {
    /// Open time (UTC).
    pub open_time: DateTime<Utc>,
    /// Open price.
    pub open: f64,
    /// High price.
    pub high: f64,
    /// Low price.
    pub low: f64,
    /// Close price.
    pub close: f64,
    /// Base-asset volume.
    pub volume: f64,
}

impl Candle {
    /// A stored kline's values, each decimal converted through its string (correctly rounded).
    pub fn from_kline(k: &store::Kline) -> Candle {
        Candle {
            open_time: k.open_time,
            open: store::kline::to_f64(k.open),
            high: store::kline::to_f64(k.high),
            low: store::kline::to_f64(k.low),
            close: store::kline::to_f64(k.close),
            volume: store::kline::to_f64(k.volume),
        }
    }
}

/// The close prices of `candles`.
pub fn closes(candles: &[Candle]) -> Vec<f64> {
    candles.iter().map(|c| c.close).collect()
}

/// The open time of the newest candle, which becomes the document's `timestamp`.
pub fn newest(candles: &[Candle]) -> Option<DateTime<Utc>> {
    candles.last().map(|c| c.open_time)
}
