//! The golden Series A and B: two synthetic hourly series whose published results fix the
//! formulas' numbers (`docs/analytics.md`, Golden series). Every value is rounded to 8 decimals
//! and passed through its decimal string, as if read from a DECIMAL(20,8) column.

use chrono::{DateTime, TimeZone, Utc};

use crate::candle::Candle;

/// The first open time of both series: 2025-10-01T00:00Z.
///
/// # Panics
/// Never: the date is a valid literal.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 1, 0, 0, 0)
        .single()
        .expect("a valid literal")
}

fn dec8(x: f64) -> f64 {
    format!("{x:.8}").parse().expect("a formatted float parses")
}

fn series(n: usize, close: impl Fn(f64) -> f64, open0: f64) -> Vec<Candle> {
    let mut out: Vec<Candle> = Vec::with_capacity(n);
    for i in 0..n {
        let fi = i as f64;
        let c = dec8(close(fi));
        let o = out.last().map_or(open0, |p| p.close);
        out.push(Candle {
            open_time: start() + chrono::Duration::hours(i as i64),
            open: o,
            high: dec8(o.max(c) + 0.5 + 0.25 * (i % 3) as f64),
            low: dec8(o.min(c) - 0.5 - 0.125 * (i % 4) as f64),
            close: c,
            volume: 1000.0 + 25.0 * (i % 24) as f64 + 2.0 * fi,
        });
    }
    out
}

/// Series A (BTCUSDT): close_i = round(100 + 10·sin(i/5) + 0.1·i, 8), open_0 = 100.
pub fn series_a(n: usize) -> Vec<Candle> {
    series(n, |i| 100.0 + 10.0 * (i / 5.0).sin() + 0.1 * i, 100.0)
}

/// Series B (ETHUSDT): close_i = round(50 + 5·cos(i/7) + 0.05·i, 8), open_0 = 55.
pub fn series_b(n: usize) -> Vec<Candle> {
    series(n, |i| 50.0 + 5.0 * (i / 7.0).cos() + 0.05 * i, 55.0)
}

/// Candles as the CSV `compute` reads (`open_time,open,high,low,close,volume`).
pub fn to_csv(candles: &[Candle]) -> String {
    let mut s = String::from("open_time,open,high,low,close,volume\n");
    for c in candles {
        s.push_str(&format!(
            "{},{},{},{},{},{}\n",
            crate::metric::rfc3339(c.open_time),
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume
        ));
    }
    s
}
