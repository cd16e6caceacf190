//! Row checks on one stored candle, on exact decimals: prices, volumes, alignment, close time, id,
//! interval and whether it was written before it closed (`docs/audit-rules.md`, Row checks).

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use store::{Kline, Timeframe};

use crate::finding::Check;

/// How a row stored its close_time: the extractor sends open + I − 1 ms, which MySQL rounds up to
/// open + I and MariaDB truncates to open + I − 1 s; both are valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseStyle {
    /// close_time = open + I.
    Rounded,
    /// close_time = open + I − 1 s.
    Truncated,
    /// Neither (a `close_time_mismatch`).
    Other,
}

/// The checks a row fails, in a fixed order, and its close_time style. `id_ok` is reported
/// separately so that the surplus rows of a duplicated open time (which the primary key forces
/// onto another id) are not counted twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowVerdict {
    /// Failed checks other than the id check.
    pub failed: Vec<Check>,
    /// Whether `id` = `<symbol>_<open ms>`.
    pub id_ok: bool,
    /// The close_time style.
    pub close: CloseStyle,
}

/// Runs every row check on `row` of table `tf` for `symbol`.
pub fn check_row(row: &Kline, symbol: &str, tf: Timeframe) -> RowVerdict {
    let i = tf.seconds();
    let mut failed = Vec::new();
    let zero = Decimal::ZERO;
    let (o, h, l, c) = (row.open, row.high, row.low, row.close);
    if h < o.max(c) || l > o.min(c) || h < l {
        failed.push(Check::OhlcViolation);
    }
    // Decimals cannot be NaN or infinite; a non-positive price is the failure mode here.
    if o <= zero || h <= zero || l <= zero || c <= zero {
        failed.push(Check::BadPrice);
    }
    if row.volume < zero
        || row.quote_asset_volume < zero
        || row.taker_buy_base < zero
        || row.taker_buy_quote < zero
        || row.taker_buy_base > row.volume
        || row.taker_buy_quote > row.quote_asset_volume
        || row.number_of_trades < 0
    {
        failed.push(Check::BadVolume);
    }
    if row.open_time.timestamp().rem_euclid(i) != 0 || row.timestamp != row.open_time {
        failed.push(Check::Misaligned);
    }
    let close_at = row.open_time + Duration::seconds(i);
    let close = if row.close_time == close_at {
        CloseStyle::Rounded
    } else if row.close_time == close_at - Duration::seconds(1) {
        CloseStyle::Truncated
    } else {
        failed.push(Check::CloseTimeMismatch);
        CloseStyle::Other
    };
    if row.interval != tf.label() {
        failed.push(Check::IntervalMismatch);
    }
    if row.extracted_at < close_at {
        failed.push(Check::PartialCandle);
    }
    RowVerdict {
        failed,
        id_ok: row.id == expected_id(symbol, row.open_time),
        close,
    }
}

/// `<SYMBOL>_<open_time epoch ms>`.
pub fn expected_id(symbol: &str, open: DateTime<Utc>) -> String {
    format!("{symbol}_{}", open.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::testing::{at, candle};

    fn h1() -> Timeframe {
        "1h".parse().expect("1h")
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    /// The valid base row of the row-check examples: open 14:00, extracted 15:10:03.
    fn base() -> Kline {
        let mut k = candle("BTCUSDT", h1(), at(2025, 10, 21, 14, 0, 0));
        k.extracted_at = at(2025, 10, 21, 15, 10, 3);
        k
    }

    fn failed(k: &Kline) -> Vec<Check> {
        let v = check_row(k, "BTCUSDT", h1());
        let mut f = v.failed;
        if !v.id_ok {
            f.push(Check::IdMismatch);
        }
        f
    }

    #[test]
    fn rounded_and_truncated_close_times_are_both_valid() {
        let mut k = base();
        k.close_time = at(2025, 10, 21, 15, 0, 0);
        let v = check_row(&k, "BTCUSDT", h1());
        assert_eq!(
            (v.failed.as_slice(), v.id_ok, v.close),
            (&[][..], true, CloseStyle::Rounded)
        );
        k.close_time = at(2025, 10, 21, 14, 59, 59);
        let v = check_row(&k, "BTCUSDT", h1());
        assert_eq!(
            (v.failed.as_slice(), v.close),
            (&[][..], CloseStyle::Truncated)
        );
    }

    #[test]
    fn high_below_close_or_low_above_open_is_an_ohlc_violation() {
        let mut k = base();
        k.high = d("100.2");
        assert_eq!(failed(&k), [Check::OhlcViolation]);
        let mut k = base();
        k.low = d("100.1");
        assert_eq!(failed(&k), [Check::OhlcViolation]);
    }

    #[test]
    fn zero_open_and_low_is_one_bad_price() {
        let mut k = base();
        k.open = d("0");
        k.low = d("0");
        k.close = d("100");
        assert_eq!(failed(&k), [Check::BadPrice]);
    }

    #[test]
    fn negative_volume_is_bad_volume() {
        let mut k = base();
        k.volume = d("-1");
        k.taker_buy_base = d("-1");
        assert_eq!(failed(&k), [Check::BadVolume]);
        let mut k = base();
        k.taker_buy_quote = d("1000.00000001");
        assert_eq!(failed(&k), [Check::BadVolume]);
    }

    #[test]
    fn open_time_thirty_seconds_off_grid_is_misaligned() {
        let mut k = candle("BTCUSDT", h1(), at(2025, 10, 21, 14, 0, 30));
        k.extracted_at = at(2025, 10, 21, 15, 10, 3);
        assert_eq!(failed(&k), [Check::Misaligned]);
        let mut k = base();
        k.timestamp = at(2025, 10, 21, 14, 0, 1);
        assert_eq!(failed(&k), [Check::Misaligned]);
    }

    #[test]
    fn close_time_a_minute_early_is_a_mismatch() {
        let mut k = base();
        k.close_time = at(2025, 10, 21, 14, 59, 0);
        let v = check_row(&k, "BTCUSDT", h1());
        assert_eq!(
            (v.failed, v.close),
            (vec![Check::CloseTimeMismatch], CloseStyle::Other)
        );
    }

    #[test]
    fn row_written_before_its_close_is_partial() {
        let mut k = base();
        k.extracted_at = at(2025, 10, 21, 14, 10, 3);
        assert_eq!(failed(&k), [Check::PartialCandle]);
    }

    #[test]
    fn wrong_id_and_wrong_interval_are_reported() {
        let mut k = base();
        k.id = "BTCUSDT_1".into();
        k.interval = "60m".into();
        assert_eq!(failed(&k), [Check::IntervalMismatch, Check::IdMismatch]);
    }
}
