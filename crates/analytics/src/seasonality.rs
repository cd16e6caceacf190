//! Seasonality: hour-of-day and weekday means, the dominant FFT cycle and the price entropy over 90
//! days of hourly candles. Maps have string keys (BSON needs them).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Map, Value};

use crate::candle::{Candle, closes, newest};
use crate::metric::{Kind, Metadata, MetricDoc, Skip, num_or_null, num_or_zero, object};
use crate::options::{Options, SeasonalHour};
use crate::stats::{dominant_cycle, entropy, histogram};

/// Fewest candles for a document.
pub const MIN_CANDLES: usize = 100;

/// Histogram bins of the entropy index.
pub const ENTROPY_BINS: usize = 50;

/// The computed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Seasonality {
    /// Mean close per UTC open hour 0..23 (0 when there is none).
    pub hourly_pattern: [f64; 24],
    /// Mean close per weekday, 0 = Monday (0 when there is none).
    pub daily_pattern: [f64; 7],
    /// `(c_last − hourly[H]) / hourly[H] × 100`; NaN when `hourly[H] = 0`.
    pub seasonal_deviation: f64,
    /// The hour H compared against.
    pub hour: u32,
    /// trunc(1 / f_k*).
    pub dominant_cycle: Option<i64>,
    /// Entropy (nats) of the 50-bin histogram of close.
    pub entropy_index: f64,
    /// n (the FFT size).
    pub n: usize,
    /// Which hour rule was used.
    pub seasonal_hour: SeasonalHour,
}

fn means<const N: usize>(candles: &[Candle], key: impl Fn(&Candle) -> usize) -> [f64; N] {
    let mut sum = [0.0; N];
    let mut count = [0usize; N];
    for c in candles {
        let k = key(c);
        sum[k] += c.close;
        count[k] += 1;
    }
    let mut out = [0.0; N];
    for k in 0..N {
        if count[k] > 0 {
            out[k] = sum[k] / count[k] as f64;
        }
    }
    out
}

/// Computes the seasonality document over `candles` (ascending, 90 days of 1h), with `now` the
/// injected clock.
///
/// # Errors
/// [`Skip::TooFewCandles`] when n < 100.
pub fn compute(
    candles: &[Candle],
    now: DateTime<Utc>,
    options: &Options,
) -> Result<Seasonality, Skip> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return Err(Skip::TooFewCandles);
    }
    let hourly_pattern: [f64; 24] = means(candles, |c| c.open_time.hour() as usize);
    let daily_pattern: [f64; 7] = means(candles, |c| {
        c.open_time.weekday().num_days_from_monday() as usize
    });
    let hour = match options.seasonal_hour {
        SeasonalHour::WallClock => now.hour(),
        SeasonalHour::LastCandle => candles[n - 1].open_time.hour(),
    };
    let p = hourly_pattern[hour as usize];
    let last = candles[n - 1].close;
    let c = closes(candles);
    Ok(Seasonality {
        hourly_pattern,
        daily_pattern,
        seasonal_deviation: if p == 0.0 {
            f64::NAN
        } else {
            (last - p) / p * 100.0
        },
        hour,
        dominant_cycle: dominant_cycle(&c),
        entropy_index: entropy(&histogram(&c, ENTROPY_BINS), n),
        n,
        seasonal_hour: options.seasonal_hour,
    })
}

fn pattern(values: &[f64]) -> Value {
    Value::Object(
        values
            .iter()
            .enumerate()
            .map(|(k, v)| (k.to_string(), num_or_zero(*v)))
            .collect::<Map<_, _>>(),
    )
}

impl Seasonality {
    /// The document (`"0"`…`"23"` and `"0"`…`"6"` keys).
    pub fn doc(&self, candles: &[Candle], options: &Options) -> Option<MetricDoc> {
        let mut opts = object([("seasonal_hour", self.seasonal_hour.as_str().into())]);
        options.window_mode_entry(&mut opts);
        Some(MetricDoc {
            kind: Kind::Seasonality,
            timestamp: newest(candles)?,
            fields: object([
                ("hourly_pattern", pattern(&self.hourly_pattern)),
                ("daily_pattern", pattern(&self.daily_pattern)),
                ("seasonal_deviation", num_or_null(self.seasonal_deviation)),
                (
                    "dominant_cycle",
                    self.dominant_cycle.map_or(Value::Null, Value::from),
                ),
                ("entropy_index", num_or_null(self.entropy_index)),
            ]),
            metadata: Metadata {
                method: "fourier_analysis",
                window: "90d",
                parameters: object([("fft_size", self.n.into())]),
                completeness: 100.0,
                options: opts,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{at, hourly};

    #[test]
    fn ninety_nine_candles_are_too_few() {
        let c = hourly(&[1.0; 99]);
        assert_eq!(
            compute(&c, at(0), &Options::default()),
            Err(Skip::TooFewCandles)
        );
    }

    #[test]
    fn patterns_average_by_utc_hour_and_weekday_with_string_keys() {
        // 120 hourly candles from Monday 2025-10-06 00:00: close = hour of day.
        let closes: Vec<f64> = (0..120).map(|i| f64::from(i % 24)).collect();
        let c = hourly(&closes);
        let s = compute(&c, at(0) + chrono::Duration::hours(5), &Options::default()).expect("doc");
        assert_eq!(s.hourly_pattern[7], 7.0);
        // Five days Monday..Friday, each with mean 11.5; weekend empty → 0.
        assert_eq!(s.daily_pattern, [11.5, 11.5, 11.5, 11.5, 11.5, 0.0, 0.0]);
        // Wall clock hour 5: (23 − 5) / 5 × 100.
        assert_eq!(s.hour, 5);
        assert!((s.seasonal_deviation - 360.0).abs() < 1e-12);
        assert_eq!(s.dominant_cycle, Some(24));
        // 24 distinct values spread over 50 bins, 5 candles each: ln 24.
        assert!((s.entropy_index - 24f64.ln()).abs() < 1e-12);
        let d = s.doc(&c, &Options::default()).expect("doc");
        assert_eq!(d.fields["hourly_pattern"]["23"], 23.0);
        assert_eq!(d.fields["daily_pattern"]["6"], 0.0);
    }

    #[test]
    fn zero_pattern_hour_gives_null_deviation_and_last_candle_option_uses_its_hour() {
        let closes: Vec<f64> = (0..120).map(|i| f64::from(i % 24)).collect();
        let c = hourly(&closes);
        let s = compute(&c, at(0), &Options::default()).expect("doc");
        assert!(s.seasonal_deviation.is_nan());
        let d = s.doc(&c, &Options::default()).expect("doc");
        assert_eq!(d.fields["seasonal_deviation"], Value::Null);
        let o = Options {
            seasonal_hour: SeasonalHour::LastCandle,
            ..Options::default()
        };
        let s = compute(&c, at(0), &o).expect("doc");
        assert_eq!(s.hour, 23);
        assert_eq!(s.seasonal_deviation, 0.0);
    }
}
