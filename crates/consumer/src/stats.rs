//! The once-per-interval stats line, every count per interval (the old service's line mixed
//! the two: its `total` was per interval but its `trades` was cumulative).

use std::fmt::Write as _;
use std::time::Duration;

use events::{Kind, RejectReason};

use crate::tally::{Counts, TimeIssue};

/// Connection-level counts for the same interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Successful reconnects.
    pub reconnects: u64,
    /// Slow-consumer events (the client dropped messages because we fell behind).
    pub slow_consumer: u64,
    /// Messages delivered by the server but not yet taken by us (an estimate: see README).
    pub queue_size: u64,
}

/// `Message processing stats: total=…, rate=… msg/s, trades=…, …`. The prefix and the old
/// field names are kept so existing log queries still match; the new fields follow them.
pub fn stats_line(t: &Counts, elapsed: Duration, conn: ConnectionCounts) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        t.received as f64 / secs
    } else {
        0.0
    };
    let mut line = format!(
        "Message processing stats: total={}, rate={rate:.1} msg/s, trades={}, depth={}, tickers={}, candles={}, queue_size={}, mark_price={}, rejected={}",
        t.received,
        t.accepted(Kind::Trade),
        t.accepted(Kind::Depth),
        t.accepted(Kind::Ticker),
        t.accepted(Kind::Kline),
        conn.queue_size,
        t.accepted(Kind::MarkPrice),
        t.rejected_total(),
    );
    for reason in RejectReason::ALL {
        let _ = write!(line, ", {}={}", reason.as_str(), t.rejected(reason));
    }
    let _ = write!(
        line,
        ", malformed={}, future_time={}, before_2017_time={}, reconnects={}, slow_consumer={}, interval_s={secs:.1}",
        t.malformed.iter().sum::<u64>(),
        t.implausible(TimeIssue::Future),
        t.implausible(TimeIssue::Before2017),
        conn.reconnects,
        conn.slow_consumer,
    );
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_is_for_the_interval() {
        let mut p = crate::process::Processor::default();
        let trade = br#"{"e":"trade","s":"BTCUSDT","E":1761055392345}"#;
        for _ in 0..3 {
            p.handle(trade, 1_761_055_392_345);
        }
        p.handle(b"x", 0);
        let t = p.take().counts;
        let conn = ConnectionCounts {
            reconnects: 1,
            slow_consumer: 0,
            queue_size: 7,
        };
        let line = stats_line(&t, Duration::from_secs(2), conn);
        assert_eq!(
            line,
            "Message processing stats: total=4, rate=2.0 msg/s, trades=3, depth=0, tickers=0, candles=0, queue_size=7, mark_price=0, rejected=1, invalid_json=1, no_payload=0, unknown_kind=0, no_symbol=0, malformed=0, future_time=0, before_2017_time=0, reconnects=1, slow_consumer=0, interval_s=2.0"
        );
    }
}
