//! Trend: moving averages, rate of change, direction and crossover.

use serde_json::Value;

use crate::candle::{Candle, closes, newest};
use crate::metric::{Kind, Metadata, MetricDoc, Skip, completeness, num_or_zero, object};
use crate::options::Options;
use crate::stats::{ewma_adjusted_last, sma_last, wma20_last};

/// Fewest candles for a document (30 daily candles never have them).
pub const MIN_CANDLES: usize = 50;

/// The computed values (NaN = undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// SMA_20 of close.
    pub sma: f64,
    /// Adjusted EWMA, span 20.
    pub ema: f64,
    /// WMA_20.
    pub wma: f64,
    /// (c_last / c_{last−10} − 1)·100.
    pub rate_of_change: f64,
    /// 100 × (closes above opens among the last 20) / 20.
    pub directional_strength: f64,
    /// SMA_20 > SMA_50 at the last row.
    pub bullish_crossover: bool,
    /// n.
    pub n: usize,
}

/// Computes the trend document over `candles` (ascending, the 30-day window).
///
/// # Errors
/// [`Skip::TooFewCandles`] when n < 50.
pub fn compute(candles: &[Candle]) -> Result<Trend, Skip> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return Err(Skip::TooFewCandles);
    }
    let c = closes(candles);
    let up = candles[n - 20..]
        .iter()
        .filter(|k| k.close > k.open)
        .count();
    let sma20 = sma_last(&c, 20);
    Ok(Trend {
        sma: sma20,
        ema: ewma_adjusted_last(&c, 20),
        wma: wma20_last(&c),
        rate_of_change: (c[n - 1] / c[n - 11] - 1.0) * 100.0,
        directional_strength: 100.0 * up as f64 / 20.0,
        bullish_crossover: sma20 > sma_last(&c, 50),
        n,
    })
}

impl Trend {
    /// The document (undefined values → 0).
    pub fn doc(&self, candles: &[Candle], options: &Options) -> Option<MetricDoc> {
        let mut opts = serde_json::Map::new();
        options.window_mode_entry(&mut opts);
        let signal = if self.bullish_crossover {
            "bullish"
        } else {
            "bearish"
        };
        Some(MetricDoc {
            kind: Kind::Trend,
            timestamp: newest(candles)?,
            fields: object([
                ("sma", num_or_zero(self.sma)),
                ("ema", num_or_zero(self.ema)),
                ("wma", num_or_zero(self.wma)),
                ("rate_of_change", num_or_zero(self.rate_of_change)),
                (
                    "directional_strength",
                    num_or_zero(self.directional_strength),
                ),
                ("crossover_signal", signal.into()),
                ("rolling_beta", Value::Null),
            ]),
            metadata: Metadata {
                method: "moving_averages",
                window: "30d",
                parameters: object([("sma_window", 20.into()), ("ema_span", 20.into())]),
                completeness: completeness(self.n, 720.0),
                options: opts,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{flat, ramp};

    #[test]
    fn forty_nine_candles_are_too_few() {
        assert_eq!(compute(&flat(49, 10.0)), Err(Skip::TooFewCandles));
    }

    #[test]
    fn a_rising_ramp_is_bullish_with_full_direction() {
        // ramp(n): close_i = 100 + i, open_i = close_i − 0.5.
        let t = compute(&ramp(50)).expect("doc");
        assert_eq!(t.sma, 100.0 + (30..50).sum::<i32>() as f64 / 20.0);
        assert!(
            (t.wma - (1..=20).map(|j| j as f64 * (129.0 + j as f64)).sum::<f64>() / 210.0).abs()
                < 1e-9
        );
        assert!((t.rate_of_change - (149.0 / 139.0 - 1.0) * 100.0).abs() < 1e-12);
        assert_eq!(t.directional_strength, 100.0);
        assert!(t.bullish_crossover);
    }

    #[test]
    fn flat_prices_are_bearish_with_zero_change() {
        let t = compute(&flat(60, 10.0)).expect("doc");
        assert_eq!((t.rate_of_change, t.directional_strength), (0.0, 0.0));
        assert!(!t.bullish_crossover);
        let d = t.doc(&flat(60, 10.0), &Options::default()).expect("doc");
        assert_eq!(d.fields["crossover_signal"], "bearish");
        assert_eq!(d.fields["rolling_beta"], Value::Null);
    }
}
