//! Every metric dm-consumer exports, defined once, and the exporter that publishes counts.
//!
//! The hot path only touches a plain [`Tally`]; every flush interval (`FLUSH_INTERVAL`, 1 s by
//! default) its delta is published here, so a message costs no atomics, locks or label
//! look-ups. `/metrics` therefore lags by at most one flush interval.

use std::sync::{Arc, Mutex};

use events::{Kind, RejectReason};
use metrics::{
    Counter, Gauge, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
};

use crate::latency::{LATENCY_METRIC, LatencyHistograms};
use crate::symbols::SymbolLabels;
use crate::tally::{SymbolCount, Tally, TimeIssue};

/// Every message taken from NATS.
pub const RECEIVED: &str = "data_manager_messages_received_total";
/// Payload bytes taken from NATS.
pub const RECEIVED_BYTES: &str = "data_manager_received_bytes_total";
/// Accepted messages by kind (`event_type`), as the current service's `processed` counter.
pub const PROCESSED: &str = "data_manager_messages_processed_total";
/// Rejected messages by `reason`.
pub const REJECTED: &str = "data_manager_messages_rejected_total";
/// Accepted messages by `event_type` and `symbol`.
pub const BY_SYMBOL: &str = "data_manager_symbol_messages_total";
/// Newest event time by `event_type` and `symbol` (Unix seconds): silence is visible.
pub const LAST_EVENT: &str = "data_manager_last_event_timestamp_seconds";
/// Accepted messages with present-but-malformed fields, by `event_type`.
pub const MALFORMED: &str = "data_manager_malformed_messages_total";
/// Accepted messages with no usable event time, by `event_type`.
pub const WITHOUT_TIME: &str = "data_manager_messages_without_event_time_total";
/// Event times set aside as implausible, by `event_type` and `reason` (`future`, `before_2017`).
pub const IMPLAUSIBLE_TIME: &str = "data_manager_implausible_event_time_total";
/// Messages the NATS client dropped for our subscription (slow consumer), from its own count.
pub const NATS_DROPPED: &str = "data_manager_nats_dropped_messages_total";
/// 1 while connected to NATS (name kept from the current service).
pub const NATS_CONNECTED: &str = "data_manager_nats_connection_status";
/// 1 while the queue subscription is active.
pub const NATS_SUBSCRIBED: &str = "data_manager_nats_subscribed";
/// Successful reconnects (name kept from the current service).
pub const NATS_RECONNECTS: &str = "data_manager_nats_reconnections_total";
/// NATS client/server errors by `type` (name kept from the current service).
pub const NATS_ERRORS: &str = "data_manager_nats_errors_total";
/// Slow-consumer events: the client dropped messages because we fell behind.
pub const NATS_SLOW_CONSUMER: &str = "data_manager_nats_slow_consumer_events_total";
/// Build information (`version`), always 1.
pub const BUILD_INFO: &str = "data_manager_build_info";

/// The label used for symbols beyond the label budget.
pub const OTHER_SYMBOL: &str = "other";

/// Registers names, help and units. Call once after the recorder is installed.
pub fn describe() {
    describe_counter!(RECEIVED, "Messages taken from the NATS subscription.");
    describe_counter!(
        RECEIVED_BYTES,
        Unit::Bytes,
        "Payload bytes taken from the NATS subscription."
    );
    describe_counter!(PROCESSED, "Accepted messages by kind.");
    describe_counter!(REJECTED, "Rejected messages by reason.");
    describe_counter!(
        BY_SYMBOL,
        "Accepted messages by kind and symbol (symbols beyond the label budget are 'other')."
    );
    describe_gauge!(
        LAST_EVENT,
        Unit::Seconds,
        "Newest event time seen, by kind and symbol."
    );
    describe_counter!(
        MALFORMED,
        "Accepted messages with present but malformed fields, by kind."
    );
    describe_counter!(
        WITHOUT_TIME,
        "Accepted messages without a usable event time, by kind."
    );
    describe_counter!(
        IMPLAUSIBLE_TIME,
        "Event times set aside (more than MAX_EVENT_TIME_SKEW ahead, or before 2017), by kind and reason."
    );
    describe_counter!(
        NATS_DROPPED,
        "Messages the NATS client dropped for the subscription because we fell behind."
    );
    describe_histogram!(
        LATENCY_METRIC,
        Unit::Seconds,
        "Receive time minus event time, by kind."
    );
    describe_gauge!(NATS_CONNECTED, "1 while connected to NATS.");
    describe_gauge!(NATS_SUBSCRIBED, "1 while the queue subscription is active.");
    describe_counter!(NATS_RECONNECTS, "Successful reconnects to NATS.");
    describe_counter!(NATS_ERRORS, "NATS errors by type.");
    describe_counter!(
        NATS_SLOW_CONSUMER,
        "Slow-consumer events (messages dropped by the client)."
    );
    describe_gauge!(BUILD_INFO, "Build information.");
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Publishes tally deltas into the `metrics` recorder, with handles resolved once.
pub struct Exporter {
    received: Counter,
    bytes: Counter,
    processed: [Counter; Kind::ALL.len()],
    rejected: [Counter; RejectReason::ALL.len()],
    malformed: [Counter; Kind::ALL.len()],
    without_time: [Counter; Kind::ALL.len()],
    implausible: [[Counter; TimeIssue::ALL.len()]; Kind::ALL.len()],
    /// Handles per label slot and kind, resolved the first time a slot has counts.
    per_symbol: Vec<Option<[SymbolSeries; Kind::ALL.len()]>>,
    other: [SymbolSeries; Kind::ALL.len()],
    latency: Arc<Mutex<LatencyHistograms>>,
}

/// The counter and last-event gauge of one (kind, symbol label), and the newest time set.
struct SymbolSeries {
    messages: Counter,
    last_event: Gauge,
    newest_ms: Option<i64>,
}

impl SymbolSeries {
    fn new(kind: Kind, label: String) -> SymbolSeries {
        SymbolSeries {
            messages: counter!(BY_SYMBOL, "event_type" => kind.as_str(), "symbol" => label.clone()),
            last_event: gauge!(LAST_EVENT, "event_type" => kind.as_str(), "symbol" => label),
            newest_ms: None,
        }
    }

    /// Adds a period's count; the gauge only moves forward.
    fn add(&mut self, count: &SymbolCount) {
        self.messages.increment(count.messages);
        if count.last_event_ms > self.newest_ms {
            self.newest_ms = count.last_event_ms;
            if let Some(ms) = count.last_event_ms {
                self.last_event.set(ms as f64 / 1000.0);
            }
        }
    }
}

impl Exporter {
    /// An exporter for the symbols a [`SymbolLabels`] admits.
    pub fn new() -> Exporter {
        let by_kind =
            |name: &'static str| Kind::ALL.map(|k| counter!(name, "event_type" => k.as_str()));
        // `fundingRate` is not a kind (funding arrives inside mark price updates), so it never
        // increments; it is registered so dashboards built on the old service's label set keep
        // their series.
        counter!(PROCESSED, "event_type" => "fundingRate").absolute(0);
        Exporter {
            received: counter!(RECEIVED),
            bytes: counter!(RECEIVED_BYTES),
            processed: by_kind(PROCESSED),
            rejected: RejectReason::ALL.map(|r| counter!(REJECTED, "reason" => r.as_str())),
            malformed: by_kind(MALFORMED),
            without_time: by_kind(WITHOUT_TIME),
            implausible: Kind::ALL.map(|k| {
                TimeIssue::ALL.map(|i| {
                    counter!(IMPLAUSIBLE_TIME, "event_type" => k.as_str(), "reason" => i.as_str())
                })
            }),
            per_symbol: Vec::new(),
            other: Kind::ALL.map(|k| SymbolSeries::new(k, OTHER_SYMBOL.to_owned())),
            latency: Arc::default(),
        }
    }

    /// The cumulative latency histograms, rendered on scrape.
    pub fn latency(&self) -> Arc<Mutex<LatencyHistograms>> {
        Arc::clone(&self.latency)
    }

    /// Adds a period's counts; `labels` names the symbol slots of `delta`.
    pub fn publish(&mut self, delta: &Tally, labels: &SymbolLabels) {
        let c = &delta.counts;
        self.received.increment(c.received);
        self.bytes.increment(c.bytes);
        for i in 0..Kind::ALL.len() {
            self.processed[i].increment(c.accepted[i]);
            self.malformed[i].increment(c.malformed[i]);
            self.without_time[i].increment(c.without_event_time[i]);
            for (counter, n) in self.implausible[i].iter().zip(c.implausible_time[i]) {
                counter.increment(n);
            }
        }
        for (counter, n) in self.rejected.iter().zip(c.rejected) {
            counter.increment(n);
        }
        if self.per_symbol.len() < delta.by_symbol.slots.len() {
            self.per_symbol
                .resize_with(delta.by_symbol.slots.len(), || None);
        }
        for (slot, row) in delta.by_symbol.slots.iter().enumerate() {
            if row.iter().all(|c| c.messages == 0) {
                continue;
            }
            let name = u32::try_from(slot).ok().and_then(|s| labels.name(s));
            let Some(name) = name else { continue };
            let series = self.per_symbol[slot]
                .get_or_insert_with(|| Kind::ALL.map(|k| SymbolSeries::new(k, name.to_string())));
            for (s, count) in series.iter_mut().zip(row) {
                if count.messages > 0 {
                    s.add(count);
                }
            }
        }
        for (s, count) in self.other.iter_mut().zip(&delta.by_symbol.other) {
            if count.messages > 0 {
                s.add(count);
            }
        }
        if let Ok(mut h) = self.latency.lock() {
            h.merge(&delta.latency);
        }
    }
}

impl Default for Exporter {
    fn default() -> Exporter {
        Exporter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_moves_counts_into_the_recorder() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut exporter = Exporter::new();
            let mut processor =
                crate::process::Processor::new(SymbolLabels::new(1, &[]), 86_400_000);
            let mut tally_of = |bodies: &[&[u8]]| {
                for body in bodies {
                    processor.handle(body, 1_761_055_392_400);
                }
                (processor.take(), processor.labels().clone())
            };
            let aaa: &[u8] = br#"{"e":"trade","s":"AAA","E":1761055392345}"#;
            let bbb: &[u8] = br#"{"e":"trade","s":"BBB","E":1761055392000}"#;
            // AAA is seen first and takes the only label; BBB goes to `other`.
            let (t, labels) = tally_of(&[aaa]);
            exporter.publish(&t, &labels);
            let (t, labels) = tally_of(&[aaa, bbb, bbb, b"{"]);
            exporter.publish(&t, &labels);
        });
        let text = handle.render();
        assert!(
            text.contains("data_manager_messages_received_total 5"),
            "{text}"
        );
        assert!(
            text.contains(r#"data_manager_messages_processed_total{event_type="trade"} 4"#),
            "{text}"
        );
        assert!(
            text.contains(r#"data_manager_messages_processed_total{event_type="fundingRate"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"data_manager_messages_rejected_total{reason="invalid_json"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"data_manager_symbol_messages_total{event_type="trade",symbol="AAA"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"data_manager_symbol_messages_total{event_type="trade",symbol="other"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"data_manager_last_event_timestamp_seconds{event_type="trade",symbol="AAA"} 1761055392.345"#), "{text}");
    }
}
