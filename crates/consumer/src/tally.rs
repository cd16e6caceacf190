//! Counting outcomes: what arrived, what was accepted by kind and symbol, what was rejected and
//! why. Pure data; the subscriber and the replay mode both feed it through [`Tally::record`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use events::{Event, Kind, Reject, RejectReason, Symbol};

use crate::latency::LatencyHistograms;

/// Counts for one period (a flush, a stats interval, or a whole replay).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Every message taken from the subscription.
    pub received: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// Accepted messages by kind ([`Kind::index`]).
    pub accepted: [u64; Kind::ALL.len()],
    /// Rejected messages by reason ([`RejectReason::index`]).
    pub rejected: [u64; RejectReason::ALL.len()],
    /// Accepted messages that had present-but-malformed fields, by kind.
    pub malformed: [u64; Kind::ALL.len()],
    /// Accepted messages with no usable event time, by kind (no latency observed for them).
    pub without_event_time: [u64; Kind::ALL.len()],
    /// Accepted messages by kind and symbol, with the newest event time seen.
    pub by_symbol: HashMap<(Kind, Symbol), SymbolCount, FastHash>,
    /// Receive time minus event time, by kind.
    pub latency: LatencyHistograms,
}

/// Per (kind, symbol) counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SymbolCount {
    /// Accepted messages.
    pub messages: u64,
    /// Newest event time (epoch ms) seen, if any message had one.
    pub last_event_ms: Option<i64>,
}

impl Tally {
    /// Counts one parse outcome received at `recv_ms` (epoch ms).
    pub fn record(&mut self, outcome: &Result<Event<'_>, Reject>, body_len: usize, recv_ms: i64) {
        self.received += 1;
        self.bytes += body_len as u64;
        match outcome {
            Err(reject) => self.rejected[reject.reason().index()] += 1,
            Ok(event) => {
                let kind = event.kind();
                self.accepted[kind.index()] += 1;
                if event.malformed_fields > 0 {
                    self.malformed[kind.index()] += 1;
                }
                let entry = self.by_symbol.entry((kind, event.symbol)).or_default();
                entry.messages += 1;
                match event.event_time_ms {
                    Some(t) => {
                        entry.last_event_ms = entry.last_event_ms.max(Some(t));
                        self.latency.observe(kind, recv_ms - t);
                    }
                    None => self.without_event_time[kind.index()] += 1,
                }
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        self.received += other.received;
        self.bytes += other.bytes;
        add(&mut self.accepted, &other.accepted);
        add(&mut self.rejected, &other.rejected);
        add(&mut self.malformed, &other.malformed);
        add(&mut self.without_event_time, &other.without_event_time);
        for (key, count) in &other.by_symbol {
            let entry = self.by_symbol.entry(*key).or_default();
            entry.messages += count.messages;
            entry.last_event_ms = entry.last_event_ms.max(count.last_event_ms);
        }
        self.latency.merge(&other.latency);
    }

    /// Accepted messages of `kind`.
    pub fn accepted(&self, kind: Kind) -> u64 {
        self.accepted[kind.index()]
    }

    /// Rejected messages for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()]
    }

    /// All rejected messages.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Accepted messages per symbol, summed over kinds.
    pub fn per_symbol(&self) -> std::collections::BTreeMap<Symbol, u64> {
        let mut out = std::collections::BTreeMap::new();
        for ((_, symbol), count) in &self.by_symbol {
            *out.entry(*symbol).or_insert(0) += count.messages;
        }
        out
    }
}

fn add<const N: usize>(into: &mut [u64; N], from: &[u64; N]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

/// FxHash: a multiply-rotate hasher for small keys we produce ourselves. The keys are symbols
/// validated to 20 bytes of `[A-Z0-9_]`, so the DoS resistance of SipHash buys nothing here
/// and its cost shows on the per-message path.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher(u64);

/// Builds [`FxHasher`]s.
pub type FastHash = BuildHasherDefault<FxHasher>;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRADE: &[u8] = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1761055392345,"s":"BTCUSDT","p":"1","q":"1"}}"#;
    const DEPTH: &[u8] =
        br#"{"stream":"ethusdt@depth20","data":{"lastUpdateId":1,"bids":[],"asks":[]}}"#;

    fn record(t: &mut Tally, body: &[u8], recv_ms: i64) {
        t.record(&events::parse(body), body.len(), recv_ms);
    }

    #[test]
    fn counts_kinds_symbols_and_rejects() {
        let mut t = Tally::default();
        record(&mut t, TRADE, 1_761_055_392_400);
        record(&mut t, TRADE, 1_761_055_392_400);
        record(&mut t, DEPTH, 1_761_055_392_400);
        record(&mut t, b"", 0);
        record(&mut t, br#"{"data":null}"#, 0);
        assert_eq!(t.received, 5);
        assert_eq!((t.accepted(Kind::Trade), t.accepted(Kind::Depth)), (2, 1));
        assert_eq!(
            (
                t.rejected(RejectReason::InvalidJson),
                t.rejected(RejectReason::NoPayload)
            ),
            (1, 1)
        );
        assert_eq!(t.without_event_time[Kind::Depth.index()], 1);
        assert_eq!(t.latency.count(Kind::Trade), 2);
        let btc = Symbol::parse("BTCUSDT").expect("valid");
        assert_eq!(
            t.by_symbol.get(&(Kind::Trade, btc)),
            Some(&SymbolCount {
                messages: 2,
                last_event_ms: Some(1_761_055_392_345)
            })
        );
    }

    #[test]
    fn merge_equals_recording_everything_in_one_tally() {
        let bodies: [&[u8]; 4] = [TRADE, DEPTH, b"[]", TRADE];
        let mut whole = Tally::default();
        let (mut a, mut b) = (Tally::default(), Tally::default());
        for (i, body) in bodies.iter().enumerate() {
            record(&mut whole, body, 1_761_055_392_500);
            record(
                if i % 2 == 0 { &mut a } else { &mut b },
                body,
                1_761_055_392_500,
            );
        }
        a.merge(&b);
        assert_eq!(a, whole);
    }

    #[test]
    fn fx_hasher_separates_symbols() {
        use std::hash::BuildHasher;
        let h = |s: &str| FastHash::default().hash_one(Symbol::parse(s).expect("valid"));
        assert_ne!(h("BTCUSDT"), h("ETHUSDT"));
        assert_eq!(h("BTCUSDT"), h("btcusdt"));
    }
}
