//! Every metric dm-consumer exports, defined once, and the exporter that publishes counts.
//!
//! The hot path only touches a plain [`Tally`]; every flush interval (`FLUSH_INTERVAL`, 1 s by
//! default) its delta is published here, so a message costs no atomics, locks or label
//! look-ups. `/metrics` therefore lags by at most one flush interval.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use events::{Kind, RejectReason, Symbol};
use metrics::{
    Counter, Gauge, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
};

use crate::latency::{LATENCY_METRIC, LatencyHistograms};
use crate::tally::Tally;

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
    symbols: SymbolLabels,
    per_symbol: HashMap<(Kind, Symbol), (Counter, Gauge)>,
    other: [(Counter, Gauge, Option<i64>); Kind::ALL.len()],
    latency: Arc<Mutex<LatencyHistograms>>,
}

impl Exporter {
    /// An exporter whose per-symbol labels are capped at `max_symbols`.
    pub fn new(max_symbols: usize) -> Exporter {
        let by_kind =
            |name: &'static str| Kind::ALL.map(|k| counter!(name, "event_type" => k.as_str()));
        // `fundingRate` never increments (wire-format.md §3); it is registered so dashboards
        // built on the current service's label set keep their series.
        counter!(PROCESSED, "event_type" => "fundingRate").absolute(0);
        Exporter {
            received: counter!(RECEIVED),
            bytes: counter!(RECEIVED_BYTES),
            processed: by_kind(PROCESSED),
            rejected: RejectReason::ALL.map(|r| counter!(REJECTED, "reason" => r.as_str())),
            malformed: by_kind(MALFORMED),
            without_time: by_kind(WITHOUT_TIME),
            symbols: SymbolLabels::new(max_symbols),
            per_symbol: HashMap::new(),
            other: Kind::ALL.map(|k| {
                (
                    counter!(BY_SYMBOL, "event_type" => k.as_str(), "symbol" => OTHER_SYMBOL),
                    gauge!(LAST_EVENT, "event_type" => k.as_str(), "symbol" => OTHER_SYMBOL),
                    None,
                )
            }),
            latency: Arc::default(),
        }
    }

    /// The cumulative latency histograms, rendered on scrape.
    pub fn latency(&self) -> Arc<Mutex<LatencyHistograms>> {
        Arc::clone(&self.latency)
    }

    /// Adds a period's counts.
    pub fn publish(&mut self, delta: &Tally) {
        self.received.increment(delta.received);
        self.bytes.increment(delta.bytes);
        for i in 0..Kind::ALL.len() {
            self.processed[i].increment(delta.accepted[i]);
            self.malformed[i].increment(delta.malformed[i]);
            self.without_time[i].increment(delta.without_event_time[i]);
        }
        for (counter, n) in self.rejected.iter().zip(delta.rejected) {
            counter.increment(n);
        }
        for (&(kind, symbol), count) in &delta.by_symbol {
            let seconds = count.last_event_ms.map(|ms| ms as f64 / 1000.0);
            if self.symbols.admit(symbol) {
                let (c, g) = self.per_symbol.entry((kind, symbol)).or_insert_with(|| {
                    let label = symbol.to_string();
                    (
                        counter!(BY_SYMBOL, "event_type" => kind.as_str(), "symbol" => label.clone()),
                        gauge!(LAST_EVENT, "event_type" => kind.as_str(), "symbol" => label),
                    )
                });
                c.increment(count.messages);
                if let Some(s) = seconds {
                    g.set(s);
                }
            } else {
                let (c, g, newest) = &mut self.other[kind.index()];
                c.increment(count.messages);
                if count.last_event_ms > *newest {
                    *newest = count.last_event_ms;
                    if let Some(s) = seconds {
                        g.set(s);
                    }
                }
            }
        }
        if let Ok(mut h) = self.latency.lock() {
            h.merge(&delta.latency);
        }
    }
}

/// Bounds the `symbol` label: the first `cap` distinct symbols get their own label, the rest
/// share `other`. Symbols come from untrusted payloads, and every label value is a time series.
#[derive(Debug)]
pub struct SymbolLabels {
    cap: usize,
    admitted: HashSet<Symbol>,
}

impl SymbolLabels {
    /// A budget of `cap` symbols.
    pub fn new(cap: usize) -> SymbolLabels {
        SymbolLabels {
            cap,
            admitted: HashSet::new(),
        }
    }

    /// Whether `symbol` has (or now gets) its own label.
    pub fn admit(&mut self, symbol: Symbol) -> bool {
        if self.admitted.contains(&symbol) {
            return true;
        }
        if self.admitted.len() < self.cap {
            self.admitted.insert(symbol);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid")
    }

    #[test]
    fn symbol_labels_are_capped_first_come() {
        let mut labels = SymbolLabels::new(2);
        assert!(labels.admit(sym("A")));
        assert!(labels.admit(sym("B")));
        assert!(!labels.admit(sym("C")));
        assert!(labels.admit(sym("A")), "admitted symbols keep their label");
    }

    #[test]
    fn publish_moves_counts_into_the_recorder() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let mut exporter = Exporter::new(1);
            let tally_of = |bodies: &[&[u8]]| {
                let mut t = Tally::default();
                for body in bodies {
                    t.record(&events::parse(body), body.len(), 1_761_055_392_400);
                }
                t
            };
            let aaa: &[u8] = br#"{"e":"trade","s":"AAA","E":1761055392345}"#;
            let bbb: &[u8] = br#"{"e":"trade","s":"BBB","E":1761055392000}"#;
            // AAA is seen first and takes the only label; BBB goes to `other`.
            exporter.publish(&tally_of(&[aaa]));
            exporter.publish(&tally_of(&[aaa, bbb, bbb, b"{"]));
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
