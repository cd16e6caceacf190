//! The one processing path for a message body, shared by the NATS subscriber and replay mode:
//! parse, count, and keep a sample of each reject reason for the interval's summary line.

use std::time::{SystemTime, UNIX_EPOCH};

use events::{Reject, RejectReason};

use crate::symbols::SymbolLabels;
use crate::tally::{Counts, Tally, observe};

/// Longest sample of a rejected body, in characters after escaping (the `…` included).
pub const SAMPLE_CHARS: usize = 300;

/// The default `MAX_EVENT_TIME_SKEW`: one day, in milliseconds.
pub const DEFAULT_MAX_SKEW_MS: i64 = 86_400_000;

/// The receive time of a message: wall-clock epoch milliseconds, as event times are.
pub fn receive_time_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses and counts messages.
#[derive(Debug)]
pub struct Processor {
    /// Counts since the last [`Processor::take`].
    pub tally: Tally,
    samples: RejectSamples,
    labels: SymbolLabels,
    max_skew_ms: i64,
}

impl Default for Processor {
    /// 500 symbol labels, none reserved, one day of allowed clock skew.
    fn default() -> Processor {
        Processor::new(SymbolLabels::new(500, &[]), DEFAULT_MAX_SKEW_MS)
    }
}

impl Processor {
    /// A processor that labels symbols within `labels` and sets aside event times more than
    /// `max_skew_ms` ahead of the receive time.
    pub fn new(labels: SymbolLabels, max_skew_ms: i64) -> Processor {
        Processor {
            tally: Tally::default(),
            samples: RejectSamples::default(),
            labels,
            max_skew_ms,
        }
    }

    /// Handles one message body received at `recv_ms` (epoch ms).
    pub fn handle(&mut self, body: &[u8], recv_ms: i64) {
        let outcome = events::parse(body);
        let observation = observe(&outcome, recv_ms, self.max_skew_ms, &mut self.labels);
        self.tally.record(observation, body.len(), recv_ms);
        if let Err(reject) = &outcome {
            self.samples.offer(reject, body);
        }
    }

    /// The symbols admitted to their own label so far.
    pub fn labels(&self) -> &SymbolLabels {
        &self.labels
    }

    /// Takes the counts so far, leaving zeros.
    pub fn take(&mut self) -> Tally {
        std::mem::take(&mut self.tally)
    }

    /// Takes the reject samples so far, leaving none.
    pub fn take_samples(&mut self) -> RejectSamples {
        std::mem::take(&mut self.samples)
    }
}

/// The first reject of each reason in a period, truncated: enough to diagnose, never a storm.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RejectSamples {
    first: [Option<String>; RejectReason::ALL.len()],
}

impl RejectSamples {
    fn offer(&mut self, reject: &Reject, body: &[u8]) {
        let slot = &mut self.first[reject.reason().index()];
        if slot.is_none() {
            *slot = Some(format!("{reject}; body: {}", excerpt(body)));
        }
    }

    /// The sample kept for `reason`, if any.
    pub fn get(&self, reason: RejectReason) -> Option<&str> {
        self.first[reason.index()].as_deref()
    }
}

/// A printable, single-line excerpt of an untrusted body: escaped first, then cut, so the
/// result is at most [`SAMPLE_CHARS`] characters whatever the body holds.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut escaped = text.chars().flat_map(char::escape_debug);
    let mut out: String = escaped.by_ref().take(SAMPLE_CHARS - 1).collect();
    match (escaped.next(), escaped.next()) {
        (None, _) => {}
        (Some(last), None) => out.push(last),
        (Some(_), Some(_)) => out.push('…'),
    }
    out
}

/// One line summarising an interval's rejects with a sample per reason, or `None` when there
/// were none.
pub fn reject_summary(tally: &Counts, samples: &RejectSamples, interval_s: f64) -> Option<String> {
    let total = tally.rejected_total();
    if total == 0 {
        return None;
    }
    let parts: Vec<String> = RejectReason::ALL
        .iter()
        .filter(|&&r| tally.rejected(r) > 0)
        .map(|&r| match samples.get(r) {
            Some(sample) => format!("{}={} (first: {sample})", r.as_str(), tally.rejected(r)),
            None => format!("{}={}", r.as_str(), tally.rejected(r)),
        })
        .collect();
    Some(format!(
        "{total} messages rejected in the last {interval_s:.0} s: {}",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_first_sample_per_reason_and_summarises() {
        let mut p = Processor::default();
        for i in 0..1000 {
            p.handle(format!("not json {i}").as_bytes(), 0);
        }
        p.handle(br#"{"data":"x"}"#, 0);
        let tally = p.take();
        let samples = p.take_samples();
        let first = samples
            .get(RejectReason::InvalidJson)
            .expect("an invalid_json sample");
        assert!(
            first.starts_with("invalid_json: ") && first.ends_with("; body: not json 0"),
            "the first body is the sample: {first}"
        );
        let line = reject_summary(&tally.counts, &samples, 60.0).expect("there were rejects");
        assert_eq!(
            line,
            format!(
                "1001 messages rejected in the last 60 s: invalid_json=1000 (first: {first}); no_payload=1 (first: {})",
                samples
                    .get(RejectReason::NoPayload)
                    .expect("no_payload sample")
            )
        );
        assert_eq!(
            line.matches("not json").count(),
            1,
            "one sample per reason: {line}"
        );
        assert_eq!(p.take().counts.received, 0, "take resets");
    }

    #[test]
    fn sample_is_escaped_then_cut_to_the_limit() {
        // Control characters escape to up to 10 characters each: cut after escaping.
        let body: String = std::iter::repeat_n('\u{1}', 500).collect();
        let ex = excerpt(body.as_bytes());
        assert_eq!(ex.chars().count(), SAMPLE_CHARS, "{ex}");
        assert!(ex.ends_with('…') && !ex.contains('\u{1}'));
        let body = format!("{{\"x\":\"{}\n{}\"", "a".repeat(400), "b");
        let ex = excerpt(body.as_bytes());
        assert!(!ex.contains('\n'));
        assert_eq!(ex.chars().count(), SAMPLE_CHARS);
        assert_eq!(
            excerpt(b"short\n"),
            "short\\n",
            "short bodies are kept whole"
        );
        let exact = "x".repeat(SAMPLE_CHARS);
        assert_eq!(
            excerpt(exact.as_bytes()),
            exact,
            "a body of exactly the limit is not cut"
        );
    }

    #[test]
    fn no_rejects_no_summary() {
        let p = Processor::default();
        assert_eq!(
            reject_summary(&p.tally.counts, &RejectSamples::default(), 60.0),
            None
        );
    }
}
