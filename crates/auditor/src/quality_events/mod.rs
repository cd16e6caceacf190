//! Data-quality events on NATS: after each cycle the leader publishes every finding that opened
//! or resolved and every dataset status change, as JSON, with a stable id in `Nats-Msg-Id` so a
//! JetStream stream bound to the subject drops a repeated publish.
//!
//! The events of a cycle are computed (pure, [`transitions`](mod@transitions)) against the previous cycle's state,
//! which the first cycle of each term reads from MongoDB before it writes. They wait in a
//! bounded outbox and are published once the cycle's results are written. A failed publish
//! never fails the cycle: it is counted, and the outbox is retried after the next cycle.

pub mod transitions;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use metrics::{counter, describe_counter, describe_gauge, gauge};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::FindOptions;
use runtime::config::Seconds;
use runtime::redact::SecretUrl;
use store::{Fence, MongoSink};
use tracing::{info, warn};

use crate::dataset::DatasetReport;
use crate::documents::{AUDIT_LOGS, HEALTH_METRICS};
use crate::finding::{Check, Severity};
use transitions::{Event, OpenFinding, Snapshot, Stamp, transitions};

/// The default subject.
pub const DEFAULT_SUBJECT: &str = "data-manager.audit.events";
/// Events kept while NATS is unreachable; beyond this the oldest are dropped and counted.
pub const MAX_OUTBOX: usize = 10_000;
/// Open findings read for the first cycle's baseline, at most.
const MAX_BASELINE_FINDINGS: i64 = 100_000;

/// Events published, by type.
pub const PUBLISHED: &str = "data_manager_audit_events_published_total";
/// Publish attempts that failed (the outbox is retried next cycle).
pub const FAILURES: &str = "data_manager_audit_events_publish_failures_total";
/// Events dropped because the outbox was full.
pub const DROPPED: &str = "data_manager_audit_events_dropped_total";
/// Events waiting to be published.
pub const PENDING: &str = "data_manager_audit_events_pending";

/// Where events go. Without `NATS_URL` publishing is off.
#[derive(Debug, Clone, clap::Args)]
pub struct EventArgs {
    /// NATS server for data-quality events (unset: no events). Never logged unredacted.
    #[arg(long = "nats-url", env = "NATS_URL", hide_env_values = true)]
    pub nats_url: Option<SecretUrl>,

    /// Subject of the data-quality events.
    #[arg(
        long = "audit-events-subject",
        env = "AUDIT_EVENTS_SUBJECT",
        default_value = DEFAULT_SUBJECT
    )]
    pub subject: String,

    /// Bound on connecting to NATS and on flushing one cycle's events.
    #[arg(
        long = "audit-events-timeout",
        env = "AUDIT_EVENTS_TIMEOUT",
        default_value = "5s"
    )]
    pub timeout: Seconds,
}

/// The publisher the audit job carries across cycles and terms.
#[derive(Debug)]
pub struct QualityEvents {
    args: EventArgs,
    client: Option<async_nats::Client>,
    snapshot: Option<Snapshot>,
    /// The term `snapshot` belongs to: another leader may have written since an older one.
    term: Option<i64>,
    outbox: VecDeque<Event>,
    failing: bool,
}

impl QualityEvents {
    /// A publisher for `args`; off when `NATS_URL` is unset.
    pub fn new(args: EventArgs) -> QualityEvents {
        describe_counter!(PUBLISHED, "Data-quality events published on NATS, by type");
        describe_counter!(
            FAILURES,
            "Failed publishes of data-quality events (retried next cycle)"
        );
        describe_counter!(
            DROPPED,
            "Data-quality events dropped because the outbox was full"
        );
        describe_gauge!(PENDING, "Data-quality events waiting to be published");
        QualityEvents {
            args,
            client: None,
            snapshot: None,
            term: None,
            outbox: VecDeque::new(),
            failing: false,
        }
    }

    /// Events waiting to be published.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// Whether events are published at all.
    pub fn enabled(&self) -> bool {
        self.args.nats_url.is_some()
    }

    /// Computes a cycle's events against the previous state and queues them. The first cycle
    /// reads that state from `sink` (call this before the cycle's results are written); if
    /// that read fails, this cycle only sets the baseline.
    pub async fn observe(&mut self, sink: &MongoSink, reports: &[DatasetReport], fence: &Fence) {
        if !self.enabled() {
            return;
        }
        if self.term != Some(fence.term) {
            // A new term: the state to compare with is what was written last, by whoever.
            self.snapshot = None;
            self.term = Some(fence.term);
        }
        let before = match self.snapshot.take() {
            Some(s) => s,
            None => {
                match tokio::time::timeout(self.args.timeout.0, baseline(sink, reports)).await {
                    Ok(Ok(s)) => s,
                    failed => {
                        let e = failed.map_or_else(
                            |_| "timed out".to_owned(),
                            |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                        );
                        warn!(error = %runtime::redact::redact_text(&e), "reading the previous audit for data-quality events failed; this cycle sets the baseline");
                        let (_, after) = transitions(&Snapshot::default(), reports, &stamp(fence));
                        self.snapshot = Some(after);
                        return;
                    }
                }
            }
        };
        let (events, after) = transitions(&before, reports, &stamp(fence));
        self.snapshot = Some(after);
        self.outbox.extend(events);
        let excess = self.outbox.len().saturating_sub(MAX_OUTBOX);
        if excess > 0 {
            self.outbox.drain(..excess);
            counter!(DROPPED).increment(excess as u64);
        }
        gauge!(PENDING).set(self.outbox.len() as f64);
    }

    /// Publishes the outbox. Never fails: a failure is counted, logged once per outage, and
    /// the events stay queued for the next call.
    pub async fn publish(&mut self) {
        if self.outbox.is_empty() || !self.enabled() {
            return;
        }
        match self.try_publish().await {
            Ok(n) => {
                if self.failing {
                    info!(published = n, "data-quality events published again");
                    self.failing = false;
                }
            }
            Err(e) => {
                counter!(FAILURES).increment(1);
                if !self.failing {
                    warn!(error = %runtime::redact::redact_text(&e), pending = self.outbox.len(), "publishing data-quality events failed; retrying after the next cycle");
                    self.failing = true;
                }
            }
        }
        gauge!(PENDING).set(self.outbox.len() as f64);
    }

    async fn try_publish(&mut self) -> Result<usize, String> {
        let timeout = self.args.timeout.0;
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                let url = self
                    .args
                    .nats_url
                    .as_ref()
                    .map(SecretUrl::expose)
                    .unwrap_or_default();
                let options = async_nats::ConnectOptions::new().connection_timeout(timeout);
                let c = tokio::time::timeout(timeout, options.connect(url))
                    .await
                    .map_err(|_| format!("connecting to NATS timed out after {timeout:?}"))?
                    .map_err(|e| e.to_string())?;
                self.client = Some(c.clone());
                c
            }
        };
        let mut by_type: BTreeMap<&'static str, u64> = BTreeMap::new();
        for event in &self.outbox {
            let payload = serde_json::to_vec(event).map_err(|e| e.to_string())?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.as_str());
            client
                .publish_with_headers(self.args.subject.clone(), headers, payload.into())
                .await
                .map_err(|e| e.to_string())?;
            *by_type.entry(event.kind.as_str()).or_default() += 1;
        }
        bounded_flush(&client, timeout).await?;
        let n = self.outbox.len();
        self.outbox.clear();
        for (kind, count) in by_type {
            counter!(PUBLISHED, "type" => kind).increment(count);
        }
        Ok(n)
    }
}

async fn bounded_flush(client: &async_nats::Client, timeout: Duration) -> Result<(), String> {
    tokio::time::timeout(timeout, client.flush())
        .await
        .map_err(|_| format!("flushing to NATS timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())
}

fn stamp(fence: &Fence) -> Stamp {
    Stamp {
        term: fence.term,
        identity: fence.holder.clone(),
    }
}

fn date(d: &Document, key: &str) -> Option<DateTime<Utc>> {
    match d.get(key)? {
        Bson::DateTime(t) => DateTime::from_timestamp_millis(t.timestamp_millis()),
        _ => None,
    }
}

fn open_finding(d: &Document) -> Option<((String, String), String, OpenFinding)> {
    let kind = d.get_str("kind").ok()?;
    let severity = d.get_str("severity").ok()?;
    let f = OpenFinding {
        check: Check::ALL.into_iter().find(|c| c.as_str() == kind)?,
        severity: [Severity::Info, Severity::Medium, Severity::High]
            .into_iter()
            .find(|s| s.as_str() == severity)?,
        start: date(d, "start").or_else(|| date(d, "open_time")),
        end: date(d, "end"),
        details: d.get_str("details").unwrap_or_default().to_owned(),
    };
    let key = (
        d.get_str("symbol").ok()?.to_owned(),
        d.get_str("timeframe").ok()?.to_owned(),
    );
    Some((key, d.get_str("_id").ok()?.to_owned(), f))
}

/// The state before this process's first cycle: each dataset's latest status and its open
/// findings, as the previous leader wrote them.
async fn baseline(
    sink: &MongoSink,
    reports: &[DatasetReport],
) -> Result<Snapshot, mongodb::error::Error> {
    let datasets: BTreeSet<(String, String)> = reports
        .iter()
        .map(|r| (r.symbol.clone(), r.timeframe.label().to_owned()))
        .collect();
    let mut snapshot = Snapshot::default();
    for (symbol, timeframe) in &datasets {
        let latest = sink
            .collection(HEALTH_METRICS)
            .find_one(doc! { "symbol": symbol, "timeframe": timeframe })
            .sort(doc! { "computed_at": -1 })
            .projection(doc! { "status": 1 })
            .await?;
        if let Some(status) = latest.as_ref().and_then(|d| d.get_str("status").ok()) {
            snapshot
                .statuses
                .insert((symbol.clone(), timeframe.clone()), status.to_owned());
        }
    }
    let symbols: BTreeSet<&str> = datasets.iter().map(|(s, _)| s.as_str()).collect();
    let options = FindOptions::builder().limit(MAX_BASELINE_FINDINGS).build();
    let open: Vec<Document> = sink
        .collection(AUDIT_LOGS)
        .find(doc! { "resolved_at": Bson::Null, "symbol": { "$in": symbols.into_iter().collect::<Vec<_>>() } })
        .with_options(options)
        .await?
        .try_collect()
        .await?;
    for (key, id, f) in open.iter().filter_map(open_finding) {
        if datasets.contains(&key) {
            snapshot.open.entry(key).or_default().insert(id, f);
        }
    }
    Ok(snapshot)
}
