//! Deviation: Bollinger bands, z-score, range index and autocorrelation of close over the 30-day
//! window.

use crate::candle::{Candle, closes, newest};
use crate::metric::{Kind, Metadata, MetricDoc, Skip, num_or_null, num_or_zero, object};
use crate::options::Options;
use crate::stats::{autocorr_lag1, last_window, mean, sample_var};

/// Fewest candles for a document.
pub const MIN_CANDLES: usize = 20;

/// The computed values (NaN = undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deviation {
    /// std_w of close at the last row.
    pub standard_deviation: f64,
    /// var_w.
    pub variance: f64,
    /// SMA_w + 2·std_w.
    pub bollinger_upper: f64,
    /// SMA_w − 2·std_w.
    pub bollinger_lower: f64,
    /// (c_last − SMA_w) / std_w, 0 when std_w = 0.
    pub z_score: f64,
    /// (c_last − min_w) / (max_w − min_w), 0.5 when the range is 0.
    pub price_range_index: f64,
    /// Lag-1 autocorrelation of close over all rows.
    pub autocorrelation: f64,
    /// w = min(20, n − 1).
    pub window: usize,
}

/// Computes the deviation document over `candles` (ascending, the 30-day window).
///
/// # Errors
/// [`Skip::TooFewCandles`] when n < 20.
pub fn compute(candles: &[Candle]) -> Result<Deviation, Skip> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return Err(Skip::TooFewCandles);
    }
    let c = closes(candles);
    let w = 20.min(n - 1);
    let win = last_window(&c, w).ok_or(Skip::TooFewCandles)?;
    let last = c[n - 1];
    let sma = mean(win);
    let variance = sample_var(win);
    let std = variance.sqrt();
    let lo = win.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = win.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let range = hi - lo;
    Ok(Deviation {
        standard_deviation: std,
        variance,
        bollinger_upper: sma + 2.0 * std,
        bollinger_lower: sma - 2.0 * std,
        z_score: if std == 0.0 { 0.0 } else { (last - sma) / std },
        price_range_index: if range == 0.0 {
            0.5
        } else {
            (last - lo) / range
        },
        autocorrelation: autocorr_lag1(&c),
        window: w,
    })
}

impl Deviation {
    /// The document (undefined values → 0, autocorrelation → null).
    pub fn doc(&self, candles: &[Candle], options: &Options) -> Option<MetricDoc> {
        let mut opts = serde_json::Map::new();
        options.window_mode_entry(&mut opts);
        Some(MetricDoc {
            kind: Kind::Deviation,
            timestamp: newest(candles)?,
            fields: object([
                ("standard_deviation", num_or_zero(self.standard_deviation)),
                ("variance", num_or_zero(self.variance)),
                ("bollinger_upper", num_or_zero(self.bollinger_upper)),
                ("bollinger_lower", num_or_zero(self.bollinger_lower)),
                ("z_score", num_or_zero(self.z_score)),
                ("price_range_index", num_or_zero(self.price_range_index)),
                ("autocorrelation", num_or_null(self.autocorrelation)),
            ]),
            metadata: Metadata {
                method: "statistical_analysis",
                window: "30d",
                parameters: object([
                    ("rolling_window", self.window.into()),
                    ("bollinger_std_multiplier", 2.into()),
                ]),
                completeness: 100.0,
                options: opts,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{flat, with_closes};

    #[test]
    fn nineteen_candles_are_too_few() {
        assert_eq!(compute(&flat(19, 1.0)), Err(Skip::TooFewCandles));
    }

    #[test]
    fn zero_std_gives_zero_z_half_range_and_null_autocorrelation() {
        let c = flat(25, 42.0);
        let d = compute(&c).expect("doc");
        assert_eq!((d.z_score, d.price_range_index), (0.0, 0.5));
        assert_eq!((d.bollinger_upper, d.bollinger_lower), (42.0, 42.0));
        let doc = d.doc(&c, &Options::default()).expect("doc");
        assert_eq!(doc.fields["autocorrelation"], serde_json::Value::Null);
        assert_eq!(doc.metadata.parameters["rolling_window"], 20);
    }

    #[test]
    fn twenty_candles_use_the_last_nineteen_closes() {
        // closes 1..=20: window 2..=20, mean 11, sample var of 19 consecutive integers = 31.666…
        let closes: Vec<f64> = (1..=20).map(f64::from).collect();
        let d = compute(&with_closes(&closes)).expect("doc");
        assert_eq!(d.window, 19);
        assert!((d.variance - 190.0 / 6.0).abs() < 1e-12);
        assert!((d.z_score - 9.0 / (190.0f64 / 6.0).sqrt()).abs() < 1e-12);
        assert_eq!(d.price_range_index, 1.0);
        assert!((d.autocorrelation - 1.0).abs() < 1e-12);
    }
}
