//! The one processing path for a message body, shared by the NATS subscriber and replay mode:
//! parse, count, and keep a sample of each reject reason for the interval's summary line.

use std::time::{SystemTime, UNIX_EPOCH};

use events::{Reject, RejectReason};

use crate::tally::Tally;

/// Longest excerpt of a rejected body kept as a sample.
pub const SAMPLE_CHARS: usize = 200;

/// The receive time of a message: wall-clock epoch milliseconds, as event times are.
pub fn receive_time_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses and counts messages.
#[derive(Debug, Default)]
pub struct Processor {
    /// Counts since the last [`Processor::take`].
    pub tally: Tally,
    samples: RejectSamples,
}

impl Processor {
    /// Handles one message body received at `recv_ms` (epoch ms).
    pub fn handle(&mut self, body: &[u8], recv_ms: i64) {
        let outcome = events::parse(body);
        self.tally.record(&outcome, body.len(), recv_ms);
        if let Err(reject) = &outcome {
            self.samples.offer(reject, body);
        }
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

/// A printable, single-line excerpt of an untrusted body.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .take(SAMPLE_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(SAMPLE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// One line summarising an interval's rejects with a sample per reason, or `None` when there
/// were none.
pub fn reject_summary(tally: &Tally, samples: &RejectSamples, interval_s: f64) -> Option<String> {
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
        let line = reject_summary(&tally, &samples, 60.0).expect("there were rejects");
        assert!(
            line.starts_with(
                "1001 messages rejected in the last 60 s: invalid_json=1000 (first: invalid_json:"
            ),
            "{line}"
        );
        assert!(line.contains("not json 0"), "{line}");
        assert!(
            !line.contains("not json 1 "),
            "only the first sample is kept: {line}"
        );
        assert!(
            line.contains("no_payload=1 (first: no_payload: `data` is a string"),
            "{line}"
        );
        assert_eq!(p.take().received, 0, "take resets");
    }

    #[test]
    fn sample_is_truncated_and_single_line() {
        let body = format!("{{\"x\":\"{}\n{}\"", "a".repeat(300), "b");
        let ex = excerpt(body.as_bytes());
        assert!(!ex.contains('\n'));
        assert!(ex.ends_with('…'));
        assert!(
            ex.chars().count() <= SAMPLE_CHARS + 8,
            "escapes add a few chars at most"
        );
    }

    #[test]
    fn no_rejects_no_summary() {
        let p = Processor::default();
        assert_eq!(
            reject_summary(&p.tally, &RejectSamples::default(), 60.0),
            None
        );
    }
}
