//! Counting outcomes: what arrived, what was accepted by kind and symbol slot, what was rejected
//! and why. Pure data; the subscriber and the replay mode both feed it through
//! [`observe`] and [`Tally::record`].
//!
//! Memory does not depend on the input: [`Counts`] is a few fixed arrays, and per-symbol counts
//! are indexed by the slots of a capped [`SymbolLabels`].

use events::{Event, Kind, Reject, RejectReason};

use crate::latency::LatencyHistograms;
use crate::symbols::{Slot, SymbolLabels};

/// Event times before this (2017-01-01T00:00:00Z, before any exchange we read existed) are
/// treated as absent.
pub const MIN_EVENT_TIME_MS: i64 = 1_483_228_800_000;

/// Why an event time was set aside as implausible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeIssue {
    /// More than the allowed skew ahead of the receive time.
    Future,
    /// Before 2017.
    Before2017,
}

impl TimeIssue {
    /// Every issue, in metric label order.
    pub const ALL: [TimeIssue; 2] = [TimeIssue::Future, TimeIssue::Before2017];

    /// The `reason` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeIssue::Future => "future",
            TimeIssue::Before2017 => "before_2017",
        }
    }

    /// Position in [`TimeIssue::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The event time of an accepted message, as the counters use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// None in the message.
    Absent,
    /// Usable for latency and last-seen.
    Plausible(i64),
    /// Present but set aside.
    Implausible(TimeIssue),
}

impl EventTime {
    /// Checks `event_ms` against the receive time: more than `max_skew_ms` ahead, or before
    /// 2017, is implausible.
    pub fn check(event_ms: Option<i64>, recv_ms: i64, max_skew_ms: i64) -> EventTime {
        match event_ms {
            None => EventTime::Absent,
            Some(t) if t < MIN_EVENT_TIME_MS => EventTime::Implausible(TimeIssue::Before2017),
            Some(t) if t > recv_ms.saturating_add(max_skew_ms) => {
                EventTime::Implausible(TimeIssue::Future)
            }
            Some(t) => EventTime::Plausible(t),
        }
    }
}

/// What one message contributes to the counts: the parse outcome reduced to bounded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Rejected for `reason`.
    Rejected(RejectReason),
    /// Accepted.
    Accepted {
        /// Its kind.
        kind: Kind,
        /// Its symbol's label slot (`None`: `other`).
        slot: Slot,
        /// Whether some present field was malformed.
        malformed: bool,
        /// Its event time.
        time: EventTime,
    },
}

/// Reduces a parse outcome to an [`Observation`], admitting its symbol to `labels` if the
/// budget allows.
pub fn observe(
    outcome: &Result<Event<'_>, Reject>,
    recv_ms: i64,
    max_skew_ms: i64,
    labels: &mut SymbolLabels,
) -> Observation {
    match outcome {
        Err(reject) => Observation::Rejected(reject.reason()),
        Ok(event) => Observation::Accepted {
            kind: event.kind(),
            slot: labels.slot(event.symbol),
            malformed: event.malformed_fields > 0,
            time: EventTime::check(event.event_time_ms, recv_ms, max_skew_ms),
        },
    }
}

/// Per-message counts with no per-symbol state: what a stats line reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
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
    /// Accepted messages with no usable event time, by kind (absent or implausible).
    pub without_event_time: [u64; Kind::ALL.len()],
    /// Event times set aside as implausible, by kind and [`TimeIssue::index`].
    pub implausible_time: [[u64; TimeIssue::ALL.len()]; Kind::ALL.len()],
}

impl Counts {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        self.received += other.received;
        self.bytes += other.bytes;
        add(&mut self.accepted, &other.accepted);
        add(&mut self.rejected, &other.rejected);
        add(&mut self.malformed, &other.malformed);
        add(&mut self.without_event_time, &other.without_event_time);
        for (mine, theirs) in self
            .implausible_time
            .iter_mut()
            .zip(&other.implausible_time)
        {
            add(mine, theirs);
        }
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

    /// Implausible event times for `issue`, over every kind.
    pub fn implausible(&self, issue: TimeIssue) -> u64 {
        self.implausible_time.iter().map(|k| k[issue.index()]).sum()
    }
}

/// Per (kind, symbol) counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SymbolCount {
    /// Accepted messages.
    pub messages: u64,
    /// Newest plausible event time (epoch ms) seen, if any message had one.
    pub last_event_ms: Option<i64>,
}

impl SymbolCount {
    fn add(&mut self, other: &SymbolCount) {
        self.messages += other.messages;
        self.last_event_ms = self.last_event_ms.max(other.last_event_ms);
    }
}

/// Counts by kind for each label slot, and for `other`. At most `MAX_SYMBOL_LABELS` slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolCounts {
    /// Indexed by slot, then [`Kind::index`].
    pub slots: Vec<[SymbolCount; Kind::ALL.len()]>,
    /// Symbols beyond the budget, by kind.
    pub other: [SymbolCount; Kind::ALL.len()],
}

impl SymbolCounts {
    fn entry(&mut self, slot: Slot, kind: Kind) -> &mut SymbolCount {
        let row = match slot {
            Some(s) => {
                let s = s as usize;
                if self.slots.len() <= s {
                    self.slots.resize(s + 1, Default::default());
                }
                &mut self.slots[s]
            }
            None => &mut self.other,
        };
        &mut row[kind.index()]
    }

    fn merge(&mut self, other: &SymbolCounts) {
        if self.slots.len() < other.slots.len() {
            self.slots.resize(other.slots.len(), Default::default());
        }
        for (mine, theirs) in self.slots.iter_mut().zip(&other.slots) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.add(b);
            }
        }
        for (a, b) in self.other.iter_mut().zip(&other.other) {
            a.add(b);
        }
    }
}

/// Counts for one period (a flush, or a whole replay).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// The per-message counts.
    pub counts: Counts,
    /// Accepted messages by symbol slot and kind, with the newest event time seen.
    pub by_symbol: SymbolCounts,
    /// Receive time minus event time, by kind.
    pub latency: LatencyHistograms,
}

impl Tally {
    /// Counts one message of `body_len` bytes received at `recv_ms` (epoch ms).
    pub fn record(&mut self, observation: Observation, body_len: usize, recv_ms: i64) {
        let c = &mut self.counts;
        c.received += 1;
        c.bytes += body_len as u64;
        let (kind, slot, malformed, time) = match observation {
            Observation::Rejected(reason) => {
                c.rejected[reason.index()] += 1;
                return;
            }
            Observation::Accepted {
                kind,
                slot,
                malformed,
                time,
            } => (kind, slot, malformed, time),
        };
        c.accepted[kind.index()] += 1;
        if malformed {
            c.malformed[kind.index()] += 1;
        }
        let entry = self.by_symbol.entry(slot, kind);
        entry.messages += 1;
        match time {
            EventTime::Plausible(t) => {
                entry.last_event_ms = entry.last_event_ms.max(Some(t));
                self.latency.observe(kind, recv_ms.saturating_sub(t));
            }
            EventTime::Absent => c.without_event_time[kind.index()] += 1,
            EventTime::Implausible(issue) => {
                c.without_event_time[kind.index()] += 1;
                c.implausible_time[kind.index()][issue.index()] += 1;
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        self.counts.merge(&other.counts);
        self.by_symbol.merge(&other.by_symbol);
        self.latency.merge(&other.latency);
    }

    /// Accepted messages per admitted symbol (summed over kinds), and those counted as `other`.
    pub fn per_symbol(
        &self,
        labels: &SymbolLabels,
    ) -> (std::collections::BTreeMap<events::Symbol, u64>, u64) {
        let mut named = std::collections::BTreeMap::new();
        for (slot, row) in self.by_symbol.slots.iter().enumerate() {
            let n: u64 = row.iter().map(|c| c.messages).sum();
            let name = u32::try_from(slot).ok().and_then(|s| labels.name(s));
            if let (true, Some(symbol)) = (n > 0, name) {
                named.insert(symbol, n);
            }
        }
        let other = self.by_symbol.other.iter().map(|c| c.messages).sum();
        (named, other)
    }
}

fn add<const N: usize>(into: &mut [u64; N], from: &[u64; N]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::Symbol;

    const TRADE: &[u8] = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1761055392345,"s":"BTCUSDT","p":"1","q":"1"}}"#;
    const DEPTH: &[u8] =
        br#"{"stream":"ethusdt@depth20","data":{"lastUpdateId":1,"bids":[],"asks":[]}}"#;
    const DAY_MS: i64 = 86_400_000;

    fn record(t: &mut Tally, labels: &mut SymbolLabels, body: &[u8], recv_ms: i64) {
        let o = observe(&events::parse(body), recv_ms, DAY_MS, labels);
        t.record(o, body.len(), recv_ms);
    }

    #[test]
    fn counts_kinds_symbols_and_rejects() {
        let mut labels = SymbolLabels::new(10, &[]);
        let mut t = Tally::default();
        record(&mut t, &mut labels, TRADE, 1_761_055_392_400);
        record(&mut t, &mut labels, TRADE, 1_761_055_392_400);
        record(&mut t, &mut labels, DEPTH, 1_761_055_392_400);
        record(&mut t, &mut labels, b"", 0);
        record(&mut t, &mut labels, br#"{"data":null}"#, 0);
        let c = &t.counts;
        assert_eq!(c.received, 5);
        assert_eq!((c.accepted(Kind::Trade), c.accepted(Kind::Depth)), (2, 1));
        assert_eq!(
            (
                c.rejected(RejectReason::InvalidJson),
                c.rejected(RejectReason::NoPayload)
            ),
            (1, 1)
        );
        assert_eq!(c.without_event_time[Kind::Depth.index()], 1);
        assert_eq!(t.latency.count(Kind::Trade), 2);
        let btc = labels
            .slot(Symbol::parse("BTCUSDT").expect("valid"))
            .expect("admitted");
        assert_eq!(
            t.by_symbol.slots[btc as usize][Kind::Trade.index()],
            SymbolCount {
                messages: 2,
                last_event_ms: Some(1_761_055_392_345)
            }
        );
    }

    #[test]
    fn merge_equals_recording_everything_in_one_tally() {
        let bodies: [&[u8]; 4] = [TRADE, DEPTH, b"[]", TRADE];
        let mut labels = SymbolLabels::new(10, &[]);
        let mut whole = Tally::default();
        let (mut a, mut b) = (Tally::default(), Tally::default());
        for (i, body) in bodies.iter().enumerate() {
            record(&mut whole, &mut labels, body, 1_761_055_392_500);
            let half = if i % 2 == 0 { &mut a } else { &mut b };
            record(half, &mut labels, body, 1_761_055_392_500);
        }
        a.merge(&b);
        assert_eq!(a, whole);
    }

    #[test]
    fn distinct_symbols_keep_the_tally_bounded() {
        let mut labels = SymbolLabels::new(500, &[]);
        let mut t = Tally::default();
        for i in 0..100_000u32 {
            let body = format!(r#"{{"e":"trade","s":"S{i}","E":1761055392345}}"#);
            record(&mut t, &mut labels, body.as_bytes(), 1_761_055_392_400);
        }
        assert_eq!(labels.len(), 500);
        assert_eq!(t.by_symbol.slots.len(), 500);
        let (named, other) = t.per_symbol(&labels);
        assert_eq!((named.len(), other), (500, 99_500));
    }

    #[test]
    fn implausible_event_times_are_set_aside_and_counted() {
        let recv = 1_761_055_392_400;
        let check = |t| EventTime::check(Some(t), recv, DAY_MS);
        assert_eq!(check(recv + DAY_MS), EventTime::Plausible(recv + DAY_MS));
        assert_eq!(
            check(recv + DAY_MS + 1),
            EventTime::Implausible(TimeIssue::Future)
        );
        assert_eq!(check(i64::MAX), EventTime::Implausible(TimeIssue::Future));
        assert_eq!(
            check(MIN_EVENT_TIME_MS - 1),
            EventTime::Implausible(TimeIssue::Before2017)
        );
        let mut labels = SymbolLabels::new(10, &[]);
        let mut t = Tally::default();
        let far = br#"{"e":"trade","s":"BTCUSDT","E":9223372036854775807}"#;
        let old = br#"{"e":"trade","s":"BTCUSDT","E":1400000000000}"#;
        record(&mut t, &mut labels, far, recv);
        record(&mut t, &mut labels, old, recv);
        record(&mut t, &mut labels, TRADE, recv);
        assert_eq!(t.counts.implausible(TimeIssue::Future), 1);
        assert_eq!(t.counts.implausible(TimeIssue::Before2017), 1);
        assert_eq!(t.counts.without_event_time[Kind::Trade.index()], 2);
        assert_eq!(t.latency.count(Kind::Trade), 1, "only the plausible time");
        assert_eq!(
            t.by_symbol.slots[0][Kind::Trade.index()].last_event_ms,
            Some(1_761_055_392_345),
            "the last-seen time is not pinned in the future"
        );
    }
}
