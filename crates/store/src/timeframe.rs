//! Candle intervals: parsed case-sensitively, limited to those that divide a day evenly.

use std::fmt;
use std::str::FromStr;

/// A kline interval the system accepts: every one divides a day evenly, so epoch-aligned grids
/// are day-aligned too (weeks and months are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timeframe {
    seconds: i64,
    label: &'static str,
    suffix: &'static str,
}

/// Binance notation, table suffix (the extractor writes the unit first: `1h` → `h1`), seconds.
const ALLOWED: [(&str, &str, i64); 12] = [
    ("1m", "m1", 60),
    ("3m", "m3", 180),
    ("5m", "m5", 300),
    ("15m", "m15", 900),
    ("30m", "m30", 1_800),
    ("1h", "h1", 3_600),
    ("2h", "h2", 7_200),
    ("4h", "h4", 14_400),
    ("6h", "h6", 21_600),
    ("8h", "h8", 28_800),
    ("12h", "h12", 43_200),
    ("1d", "d1", 86_400),
];

/// A timeframe that is not one of the accepted intervals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a supported timeframe (case matters; use one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d)"
)]
pub struct BadTimeframe(pub String);

impl Timeframe {
    /// The interval in seconds.
    pub const fn seconds(self) -> i64 {
        self.seconds
    }

    /// Binance notation, as stored in the `interval` column (`5m`).
    pub const fn label(self) -> &'static str {
        self.label
    }

    /// The table holding this timeframe's candles (`klines_m5`). Built only from the closed set
    /// above, so it is safe to splice into SQL.
    pub fn table(self) -> String {
        format!("klines_{}", self.suffix)
    }
}

impl FromStr for Timeframe {
    type Err = BadTimeframe;

    /// Case-sensitive: `1M` (a month) is rejected rather than read as one minute.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        ALLOWED
            .iter()
            .find(|(label, _, _)| *label == t)
            .map(|&(label, suffix, seconds)| Timeframe {
                seconds,
                label,
                suffix,
            })
            .ok_or_else(|| BadTimeframe(s.to_owned()))
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_unit_first() {
        let names: Vec<String> = ["5m", "15m", "30m", "1h", "1d"]
            .iter()
            .map(|s| s.parse::<Timeframe>().expect("allowed").table())
            .collect();
        assert_eq!(
            names,
            [
                "klines_m5",
                "klines_m15",
                "klines_m30",
                "klines_h1",
                "klines_d1"
            ]
        );
    }

    #[test]
    fn month_and_odd_intervals_are_rejected_case_sensitively() {
        for bad in ["1M", "1H", "7m", "1w", "", "m5"] {
            assert!(bad.parse::<Timeframe>().is_err(), "{bad} accepted");
        }
        assert_eq!("1m".parse::<Timeframe>().map(Timeframe::seconds), Ok(60));
    }

    #[test]
    fn every_allowed_interval_divides_a_day() {
        for (label, _, secs) in ALLOWED {
            assert_eq!(86_400 % secs, 0, "{label}");
        }
    }
}
