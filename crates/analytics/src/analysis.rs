//! One timeframe's analysis of every symbol (pure): windows measured back from `as_of`, every
//! calculator, then regime from the same results and correlation across symbols.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use store::Timeframe;

use crate::candle::Candle;
use crate::correlation::{self, Correlation};
use crate::metric::{Kind, MetricDoc, Skip};
use crate::options::{Options, WindowMode};
use crate::regime::{self, Inputs};
use crate::{deviation, seasonality, trend, volatility, volume};

/// The 30-day window of volatility, trend, deviation and correlation.
pub const WINDOW_30D: Duration = Duration::days(30);
/// The 24-hour window of volume.
pub const WINDOW_24H: Duration = Duration::hours(24);
/// The 90-day window of seasonality.
pub const WINDOW_90D: Duration = Duration::days(90);

/// Whether `tf` is the hourly timeframe (seasonality, regime and, in the service, correlation).
pub fn is_hourly(tf: Timeframe) -> bool {
    tf.seconds() == 3_600
}

/// How far back a read must reach from `as_of` so every window of `tf` is covered.
pub fn read_span(tf: Timeframe, mode: WindowMode) -> Duration {
    let time = if is_hourly(tf) {
        WINDOW_90D
    } else {
        WINDOW_30D
    };
    match mode {
        WindowMode::Time => time,
        // The largest minimum (seasonality 100 on 1h, trend 50 otherwise), twice over for gaps.
        WindowMode::Candles => {
            let most = if is_hourly(tf) { 100 } else { 50 };
            time.max(Duration::seconds(tf.seconds() * most * 2))
        }
    }
}

/// The rows of a window: open time in [as_of − span, as_of), or with `candles` mode at least
/// the `min` newest rows before `as_of`.
pub fn window(
    candles: &[Candle],
    as_of: DateTime<Utc>,
    span: Duration,
    min: usize,
    mode: WindowMode,
) -> &[Candle] {
    let end = candles.partition_point(|c| c.open_time < as_of);
    let from = as_of - span;
    let mut start = candles[..end].partition_point(|c| c.open_time < from);
    if mode == WindowMode::Candles {
        start = start.min(end.saturating_sub(min));
    }
    &candles[start..end]
}

/// One symbol's documents (or why each was skipped), keyed by metric.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolResults {
    /// The symbol.
    pub symbol: String,
    /// Per metric (volatility, volume, trend, deviation, plus seasonality and regime on 1h).
    pub metrics: BTreeMap<Kind, Result<MetricDoc, Skip>>,
}

/// The analysis of one timeframe.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The timeframe.
    pub timeframe: Timeframe,
    /// Per symbol, in input order.
    pub symbols: Vec<SymbolResults>,
    /// Correlation across symbols, when requested.
    pub correlation: Option<Result<Correlation, Skip>>,
}

impl Analysis {
    /// Every document with its symbol (the matrix is separate: [`Analysis::correlation`]).
    pub fn documents(&self, options: &Options) -> Vec<(String, MetricDoc)> {
        let mut out: Vec<(String, MetricDoc)> = self
            .symbols
            .iter()
            .flat_map(|s| {
                s.metrics
                    .values()
                    .filter_map(|r| r.as_ref().ok())
                    .map(|d| (s.symbol.clone(), d.clone()))
            })
            .collect();
        if let Some(Ok(c)) = &self.correlation {
            out.extend(c.docs(options));
        }
        out
    }

    /// Skipped metrics by (metric, reason), zero counts left out.
    pub fn skipped(&self) -> BTreeMap<(Kind, Skip), u64> {
        let mut out = BTreeMap::new();
        for s in &self.symbols {
            for (k, r) in &s.metrics {
                if let Err(reason) = r {
                    *out.entry((*k, *reason)).or_default() += 1;
                }
            }
        }
        match &self.correlation {
            Some(Err(reason)) => *out.entry((Kind::Correlation, *reason)).or_default() += 1,
            Some(Ok(c)) if !c.matrix_fits() => {
                *out.entry((Kind::Correlation, Skip::TooLarge)).or_default() += 1;
            }
            _ => {}
        }
        out
    }
}

fn field(doc: &Result<MetricDoc, Skip>, name: &str) -> Option<f64> {
    doc.as_ref().ok()?.fields.get(name)?.as_f64()
}

/// Analyses every symbol of `series` (each ascending by open time) for `tf` as of `as_of`
/// (exclusive), with `now` the clock seasonality uses. `correlate` adds correlation.
pub fn analyze(
    series: &[(String, Vec<Candle>)],
    tf: Timeframe,
    as_of: DateTime<Utc>,
    now: DateTime<Utc>,
    options: &Options,
    correlate: bool,
) -> Analysis {
    let mode = options.window_mode;
    let hourly = is_hourly(tf);
    let symbols = series
        .iter()
        .map(|(symbol, candles)| {
            let mut m: BTreeMap<Kind, Result<MetricDoc, Skip>> = BTreeMap::new();
            let w30 = window(candles, as_of, WINDOW_30D, volatility::MIN_CANDLES, mode);
            m.insert(
                Kind::Volatility,
                volatility::compute(w30, tf, options)
                    .and_then(|v| v.doc(w30, options).ok_or(Skip::TooFewCandles)),
            );
            let w24 = window(candles, as_of, WINDOW_24H, volume::MIN_CANDLES, mode);
            m.insert(
                Kind::Volume,
                volume::compute(w24).and_then(|v| v.doc(w24, options).ok_or(Skip::TooFewCandles)),
            );
            let wt = window(candles, as_of, WINDOW_30D, trend::MIN_CANDLES, mode);
            m.insert(
                Kind::Trend,
                trend::compute(wt).and_then(|v| v.doc(wt, options).ok_or(Skip::TooFewCandles)),
            );
            let wd = window(candles, as_of, WINDOW_30D, deviation::MIN_CANDLES, mode);
            m.insert(
                Kind::Deviation,
                deviation::compute(wd).and_then(|v| v.doc(wd, options).ok_or(Skip::TooFewCandles)),
            );
            if hourly {
                let w90 = window(candles, as_of, WINDOW_90D, seasonality::MIN_CANDLES, mode);
                m.insert(
                    Kind::Seasonality,
                    seasonality::compute(w90, now, options)
                        .and_then(|v| v.doc(w90, options).ok_or(Skip::TooFewCandles)),
                );
                let vol = &m[&Kind::Volatility];
                let inputs = Inputs {
                    annualized_volatility: field(vol, "annualized_volatility"),
                    volume_spike_ratio: field(&m[&Kind::Volume], "volume_spike_ratio"),
                    rate_of_change: field(&m[&Kind::Trend], "rate_of_change"),
                };
                let regime = regime::classify(inputs, options.regime_order).and_then(|r| {
                    let ts = vol.as_ref().map_err(|_| Skip::MissingInputs)?.timestamp;
                    Ok(r.doc(ts, options))
                });
                m.insert(Kind::Regime, regime);
            }
            SymbolResults {
                symbol: symbol.clone(),
                metrics: m,
            }
        })
        .collect();
    let correlation = correlate.then(|| {
        let windows: Vec<(String, Vec<Candle>)> = series
            .iter()
            .map(|(s, c)| {
                let w = window(
                    c,
                    as_of,
                    WINDOW_30D,
                    correlation::MIN_CANDLES_EXCLUSIVE + 1,
                    mode,
                );
                (s.clone(), w.to_vec())
            })
            .collect();
        correlation::compute(&windows, options)
    });
    Analysis {
        timeframe: tf,
        symbols,
        correlation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{at, flat, h1};

    #[test]
    fn windows_end_before_as_of_and_start_at_the_span() {
        let c = flat(48, 1.0);
        let w = window(&c, at(30), Duration::hours(24), 5, WindowMode::Time);
        assert_eq!(
            (w.len(), w[0].open_time, w[23].open_time),
            (24, at(6), at(29))
        );
        let w = window(&c, at(30), Duration::hours(3), 5, WindowMode::Candles);
        assert_eq!((w.len(), w[0].open_time), (5, at(25)));
    }

    #[test]
    fn regime_uses_the_same_results_and_is_hourly_only() {
        let c = crate::golden::series_a(720);
        let series = vec![("BTCUSDT".to_owned(), c)];
        let as_of = crate::golden::start() + Duration::hours(720);
        let a = analyze(&series, h1(), as_of, as_of, &Options::default(), false);
        let m = &a.symbols[0].metrics;
        let regime = m[&Kind::Regime].as_ref().expect("regime");
        // Series A: annualised ≈ 0.0996 (low), spike ≈ 1.11 (medium) → transitional.
        assert_eq!(regime.fields["volatility_level"], "low");
        assert_eq!(regime.fields["volume_level"], "medium");
        assert_eq!(regime.fields["regime"], "transitional");
        assert_eq!(
            regime.timestamp,
            m[&Kind::Volatility].as_ref().expect("vol").timestamp
        );
        let d1: Timeframe = "1d".parse().expect("1d");
        let a = analyze(&series, d1, as_of, as_of, &Options::default(), false);
        assert!(!a.symbols[0].metrics.contains_key(&Kind::Regime));
        assert!(!a.symbols[0].metrics.contains_key(&Kind::Seasonality));
    }
}
