//! Volume: totals, SMA, adjusted EMA and the spike ratio over 24 hours.

use crate::candle::{Candle, newest};
use crate::metric::{Kind, Metadata, MetricDoc, Skip, num_or_null, object};
use crate::options::Options;
use crate::stats::{ewma_adjusted_last, median, sma_last};

/// Fewest candles for a document (a 24 h window of daily candles never has them).
pub const MIN_CANDLES: usize = 5;

/// The computed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Volume {
    /// Σ volume.
    pub total_volume: f64,
    /// SMA_k.
    pub volume_sma: f64,
    /// Adjusted EWMA with span k, at the last row.
    pub volume_ema: f64,
    /// Last volume / median volume, or 1 when the median is 0.
    pub volume_spike_ratio: f64,
    /// k = min(20, n).
    pub window: usize,
}

/// Computes the volume document over `candles` (ascending, the 24-hour window).
///
/// # Errors
/// [`Skip::TooFewCandles`] when n < 5.
pub fn compute(candles: &[Candle]) -> Result<Volume, Skip> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return Err(Skip::TooFewCandles);
    }
    let v: Vec<f64> = candles.iter().map(|c| c.volume).collect();
    let k = 20.min(n);
    let med = median(&v);
    Ok(Volume {
        total_volume: v.iter().sum(),
        volume_sma: sma_last(&v, k),
        volume_ema: ewma_adjusted_last(&v, k),
        volume_spike_ratio: if med == 0.0 { 1.0 } else { v[n - 1] / med },
        window: k,
    })
}

impl Volume {
    /// The document.
    pub fn doc(&self, candles: &[Candle], options: &Options) -> Option<MetricDoc> {
        let mut opts = serde_json::Map::new();
        options.window_mode_entry(&mut opts);
        Some(MetricDoc {
            kind: Kind::Volume,
            timestamp: newest(candles)?,
            fields: object([
                ("total_volume", num_or_null(self.total_volume)),
                ("volume_sma", num_or_null(self.volume_sma)),
                ("volume_ema", num_or_null(self.volume_ema)),
                ("volume_delta", 0.0.into()),
                ("volume_spike_ratio", num_or_null(self.volume_spike_ratio)),
            ]),
            metadata: Metadata {
                method: "aggregation",
                window: "24h",
                parameters: object([("sma_window", self.window.into())]),
                completeness: 100.0,
                options: opts,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::with_volumes;

    #[test]
    fn four_candles_are_too_few() {
        assert_eq!(compute(&with_volumes(&[1.0; 4])), Err(Skip::TooFewCandles));
    }

    #[test]
    fn five_candles_use_all_of_them() {
        let v = compute(&with_volumes(&[1.0, 2.0, 3.0, 4.0, 10.0])).expect("doc");
        assert_eq!(v.window, 5);
        assert_eq!(v.total_volume, 20.0);
        assert_eq!(v.volume_sma, 4.0);
        assert_eq!(v.volume_spike_ratio, 10.0 / 3.0);
    }

    #[test]
    fn zero_median_gives_spike_ratio_one() {
        let v = compute(&with_volumes(&[0.0, 0.0, 0.0, 5.0, 7.0])).expect("doc");
        assert_eq!(v.volume_spike_ratio, 1.0);
    }
}
