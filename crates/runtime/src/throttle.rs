//! Rate-limiting for log lines that could repeat: at most one per interval, with a count of
//! what was held back, so a fault costs one summarised line per interval instead of a storm.

use std::time::{Duration, Instant};

/// Decides whether a repeated event may be logged now. Pure: the caller passes `now`.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// A throttle that lets one line through per `every`.
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Records one occurrence. `Some(n)` means "log now", where `n` occurrences were held back
    /// since the last line; `None` means "count it and stay quiet".
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_suppressed_count() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(60));
        assert_eq!(t.allow(t0), Some(0));
        for s in 1..=59 {
            assert_eq!(t.allow(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(t.allow(t0 + Duration::from_secs(60)), Some(59));
        assert_eq!(t.allow(t0 + Duration::from_secs(61)), None);
    }
}
