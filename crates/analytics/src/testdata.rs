//! Small hand-made candle series for the calculators' unit tests.

use chrono::{DateTime, Duration, TimeZone, Utc};
use store::Timeframe;

use crate::candle::Candle;

pub fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

/// Monday 2025-10-06 00:00 UTC plus `hours`.
pub fn at(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 6, 0, 0, 0)
        .single()
        .expect("valid")
        + Duration::hours(hours)
}

/// Hourly candles from `at(0)` with these closes (open = high = low = close, volume 1).
pub fn hourly(closes: &[f64]) -> Vec<Candle> {
    closes
        .iter()
        .enumerate()
        .map(|(i, &c)| Candle {
            open_time: at(i as i64),
            open: c,
            high: c,
            low: c,
            close: c,
            volume: 1.0,
        })
        .collect()
}

pub fn with_closes(closes: &[f64]) -> Vec<Candle> {
    hourly(closes)
}

pub fn flat(n: usize, price: f64) -> Vec<Candle> {
    hourly(&vec![price; n])
}

/// close_i = 100 + i, open = close − 0.5, high = close + 1, low = open − 1.
pub fn ramp(n: usize) -> Vec<Candle> {
    (0..n)
        .map(|i| {
            let c = 100.0 + i as f64;
            Candle {
                open_time: at(i as i64),
                open: c - 0.5,
                high: c + 1.0,
                low: c - 1.5,
                close: c,
                volume: 10.0,
            }
        })
        .collect()
}

pub fn with_volumes(v: &[f64]) -> Vec<Candle> {
    let mut c = hourly(&vec![1.0; v.len()]);
    for (k, x) in c.iter_mut().zip(v) {
        k.volume = *x;
    }
    c
}

/// A correlation over `n` symbols of 9-character names, every ρ 0.5, one per-symbol row (the
/// first symbol's).
pub fn square(n: usize) -> crate::correlation::Correlation {
    let symbols: Vec<String> = (0..n).map(|i| format!("S{i:04}USDT")).collect();
    let first = crate::correlation::SymbolCorrelation {
        symbol: symbols[0].clone(),
        correlations: symbols.iter().map(|s| (s.clone(), 0.5)).collect(),
        rolling_correlation: 0.0,
        cross_correlation_lag: None,
        volatility_correlation: f64::NAN,
    };
    crate::correlation::Correlation {
        benchmark: symbols[0].clone(),
        matrix: vec![vec![0.5; n]; n],
        symbols,
        per_symbol: vec![first],
        timestamp: at(0),
        input: crate::options::Options::default().correlation_input,
    }
}
