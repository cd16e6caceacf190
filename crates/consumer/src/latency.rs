//! Event-latency histograms per kind: fixed buckets counted in place, rendered as Prometheus text.
//!
//! The `metrics` facade records every histogram sample individually and keeps them until
//! upkeep; at hundreds of thousands of messages a second that is megabytes of samples. Counting
//! into fixed buckets on the hot path costs one comparison loop and no memory.

use std::fmt::Write as _;

use events::Kind;

/// Upper bounds of the buckets, in seconds (`+Inf` is implicit).
pub const BUCKETS_SECONDS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The metric name (also in the README's metrics table).
pub const LATENCY_METRIC: &str = "data_manager_event_latency_seconds";

/// One histogram per kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistograms {
    per_kind: [Histogram; Kind::ALL.len()],
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Histogram {
    /// Non-cumulative counts; the last slot is `+Inf`.
    buckets: [u64; BUCKETS_SECONDS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

impl LatencyHistograms {
    /// Records one latency. Negative values (producer clock ahead of ours) count as zero: the
    /// histogram answers "how late", and skew is not lateness.
    pub fn observe(&mut self, kind: Kind, latency_ms: i64) {
        let seconds = latency_ms.max(0) as f64 / 1000.0;
        let h = &mut self.per_kind[kind.index()];
        let slot = BUCKETS_SECONDS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS_SECONDS.len());
        h.buckets[slot] += 1;
        h.sum_seconds += seconds;
        h.count += 1;
    }

    /// Adds `other`'s counts into `self`.
    pub fn merge(&mut self, other: &LatencyHistograms) {
        for (mine, theirs) in self.per_kind.iter_mut().zip(&other.per_kind) {
            for (a, b) in mine.buckets.iter_mut().zip(&theirs.buckets) {
                *a += b;
            }
            mine.sum_seconds += theirs.sum_seconds;
            mine.count += theirs.count;
        }
    }

    /// Number of observations for `kind`.
    pub fn count(&self, kind: Kind) -> u64 {
        self.per_kind[kind.index()].count
    }

    /// Appends the Prometheus exposition of every kind (kinds with no samples included, so the
    /// series exist from the first scrape).
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP {LATENCY_METRIC} Receive time minus event time, by kind."
        );
        let _ = writeln!(out, "# TYPE {LATENCY_METRIC} histogram");
        for kind in Kind::ALL {
            let h = &self.per_kind[kind.index()];
            let mut cumulative = 0;
            for (i, le) in BUCKETS_SECONDS.iter().enumerate() {
                cumulative += h.buckets[i];
                let _ = writeln!(
                    out,
                    "{LATENCY_METRIC}_bucket{{event_type=\"{kind}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{LATENCY_METRIC}_bucket{{event_type=\"{kind}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "{LATENCY_METRIC}_sum{{event_type=\"{kind}\"}} {}",
                h.sum_seconds
            );
            let _ = writeln!(
                out,
                "{LATENCY_METRIC}_count{{event_type=\"{kind}\"}} {}",
                h.count
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_in_the_exposition() {
        let mut h = LatencyHistograms::default();
        h.observe(Kind::Trade, 3); // 0.003 s -> le=0.005
        h.observe(Kind::Trade, 200); // 0.2 s -> le=0.25
        h.observe(Kind::Trade, -50); // skew counts as 0
        h.observe(Kind::Trade, 120_000); // beyond the last bucket
        let mut text = String::new();
        h.render(&mut text);
        assert!(
            text.contains(
                r#"data_manager_event_latency_seconds_bucket{event_type="trade",le="0.001"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"data_manager_event_latency_seconds_bucket{event_type="trade",le="0.005"} 2"#
        ));
        assert!(text.contains(
            r#"data_manager_event_latency_seconds_bucket{event_type="trade",le="0.25"} 3"#
        ));
        assert!(text.contains(
            r#"data_manager_event_latency_seconds_bucket{event_type="trade",le="60"} 3"#
        ));
        assert!(text.contains(
            r#"data_manager_event_latency_seconds_bucket{event_type="trade",le="+Inf"} 4"#
        ));
        assert!(text.contains(r#"data_manager_event_latency_seconds_count{event_type="trade"} 4"#));
        assert!(text.contains(r#"data_manager_event_latency_seconds_count{event_type="depth"} 0"#));
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistograms::default();
        let mut b = LatencyHistograms::default();
        a.observe(Kind::Kline, 10);
        b.observe(Kind::Kline, 10);
        b.observe(Kind::Depth, 10);
        a.merge(&b);
        assert_eq!((a.count(Kind::Kline), a.count(Kind::Depth)), (2, 1));
    }
}
