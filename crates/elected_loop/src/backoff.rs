//! The delay before retrying after failed cycles: exponential, capped at the interval, jittered.

use std::time::Duration;

/// The delay before retrying after `failures` consecutive failed cycles: `retry_min` doubling,
/// capped at the interval, with up to 20 % jitter.
pub fn backoff(failures: u32, retry_min: Duration, interval: Duration, jitter: f64) -> Duration {
    let exp = retry_min.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    exp.min(interval).mul_f64(1.0 + jitter.clamp(0.0, 0.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_clamped_to_twenty_percent() {
        let s = Duration::from_secs(10);
        assert_eq!(backoff(1, s, s * 100, 5.0), Duration::from_secs(12));
        assert_eq!(backoff(1, s, s * 100, -1.0), s);
    }
}
