//! The Mongo documents of the trades datasets, in the klines datasets' collections and shapes
//! (`health_metrics` per dataset per cycle, upserted `audit_logs` per finding, same keys with
//! timeframe `trades`), and their fenced, batched write through the same sink. Documents are
//! pure.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};
use store::bson_safe::{date, double};
use store::trades::TRADES_TABLE;
use store::{Batching, Fence, MongoSink};
use tokio_util::sync::CancellationToken;

use crate::finding::{Check, Finding, rfc3339};
use crate::trades::reconcile::TradesReport;
use crate::write::{
    DatasetWrites, Statements, WriteError, Written, statements_of, write_per_document,
    write_statements,
};

/// The timeframe label of every trades dataset.
pub const TRADES_TIMEFRAME: &str = "trades";

/// The kinds a trades dataset can report, all dataset-level.
pub const KINDS: [Check; 11] = [
    Check::NoData,
    Check::ReadError,
    Check::NotExtracted,
    Check::TableMissing,
    Check::TradesMissing,
    Check::TradesExcess,
    Check::TradeVolumeMismatch,
    Check::TradeIdClamped,
    Check::TradeIdCollision,
    Check::TradeMsCollision,
    Check::UndecodableTrade,
];

/// The health document's `_id`; a retried cycle replaces it.
pub fn health_id(r: &TradesReport) -> String {
    format!("{}|{TRADES_TIMEFRAME}|{}", r.symbol, rfc3339(r.params.now))
}

/// The health document's fields (`$set`). `quality_score` is the completeness, the one score
/// of a trades dataset.
pub fn health_doc(r: &TradesReport, run_id: &str) -> Document {
    let c = &r.counts;
    let completeness = r.completeness.map_or(Bson::Null, double);
    doc! {
        "symbol": &r.symbol,
        "timeframe": TRADES_TIMEFRAME,
        "table": TRADES_TABLE,
        "dataset_id": r.dataset_id(),
        "run_id": run_id,
        "computed_at": date(r.params.now),
        "window_start": date(r.params.start()),
        "window_end": date(r.params.end()),
        "reference_timeframe": r.params.reference.label(),
        "reference_table": r.params.reference.table(),
        "candles": c.candles,
        "reference_candles": c.reference_candles,
        "expected_trades": c.expected_trades,
        "stored_trades": c.stored_trades,
        "missing_trades": c.missing_trades,
        "excess_trades": c.excess_trades,
        "unreferenced_trades": c.unreferenced_trades,
        "invalid_rows": c.undecodable_rows,
        "short_candles": c.short_candles,
        "ms_collision_candles": c.ms_collision_candles,
        "volume_mismatch_candles": c.volume_mismatch_candles,
        "clamped_rows": c.clamped_rows,
        "colliding_ids": c.colliding_ids,
        "completeness": completeness.clone(),
        "quality_score": completeness,
        "status": r.status.as_str(),
        "error": r.error.as_deref().map_or(Bson::Null, |e| Bson::String(e.to_owned())),
    }
}

/// A finding's document: (`$set` fields, `$setOnInsert` fields), the klines findings' fields.
pub fn finding_doc(r: &TradesReport, f: &Finding, run_id: &str) -> (Document, Document) {
    let now = r.params.now;
    let set = doc! {
        "symbol": &r.symbol,
        "timeframe": TRADES_TIMEFRAME,
        "dataset_id": r.dataset_id(),
        "kind": f.check.as_str(),
        "audit_type": f.check.as_str(),
        "severity": f.severity.as_str(),
        "start": Bson::Null,
        "end": Bson::Null,
        "open_time": Bson::Null,
        "timestamp": date(now),
        "missing_candles": Bson::Null,
        "duration_seconds": Bson::Null,
        "missing_trades": r.counts.missing_trades,
        "expected_trades": r.counts.expected_trades,
        "details": &f.details,
        "last_seen": date(now),
        "resolved_at": Bson::Null,
        "run_id": run_id,
    };
    (set, doc! { "first_seen": date(now) })
}

/// The filter of this dataset's open findings not seen this cycle; `None` when the dataset
/// was not audited (then nothing is known to be resolved).
pub fn unresolved_filter(r: &TradesReport) -> Option<Document> {
    if !r.audited() {
        return None;
    }
    let kinds: Vec<&str> = KINDS.iter().map(|c| c.as_str()).collect();
    Some(doc! {
        "symbol": &r.symbol,
        "timeframe": TRADES_TIMEFRAME,
        "resolved_at": Bson::Null,
        "last_seen": { "$lt": date(r.params.now) },
        "kind": { "$in": kinds },
    })
}

/// The statements of the trades datasets' writes: (findings, resolutions, health
/// documents), in the klines datasets' shape ([`crate::write::statements`]): every audited
/// dataset's resolution in one statement naming its symbols. Pure.
pub fn statements(reports: &[TradesReport], run_id: &str) -> Statements {
    statements_of(reports.iter().map(|r| dataset_writes(r, run_id)))
}

/// One trades dataset's documents.
fn dataset_writes(r: &TradesReport, run_id: &str) -> DatasetWrites {
    let findings = r.findings.iter().map(|f| {
        let (set, set_on_insert) = finding_doc(r, f, run_id);
        (f.key(&r.symbol, TRADES_TIMEFRAME), set, set_on_insert)
    });
    DatasetWrites {
        findings: findings.collect(),
        unresolved: unresolved_filter(r)
            .map(|filter| (filter, date(r.params.now), r.symbol.clone())),
        health: (health_id(r), health_doc(r, run_id)),
    }
}

/// Writes the trades reports with the default [`Batching`]: see [`write_reports_with`].
///
/// # Errors
/// As [`write_reports_with`].
pub async fn write_reports(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[TradesReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Written, WriteError> {
    write_reports_with(sink, fence, reports, run_id, now, stop, Batching::default()).await
}

/// Writes the trades reports as the klines reports are written
/// ([`crate::write::write_reports_with`]): findings and health documents as a few unordered
/// commands, then the resolutions, each round one transaction that re-claims the fence, every
/// command bounded by the write deadline, stopping between rounds once `stop` is cancelled. Writes
/// the same documents as [`write_reports_per_document`].
///
/// # Errors
/// [`WriteError::Sink`] ([`store::SinkError::Fenced`] when a newer term wrote or claimed the
/// fence, [`store::SinkError::DeadlinePassed`] after the write deadline);
/// [`WriteError::Stopped`] when `stop` was cancelled.
pub async fn write_reports_with(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[TradesReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
    batching: Batching,
) -> Result<Written, WriteError> {
    let cycle = statements(reports, run_id);
    write_statements(sink, fence, now, stop, batching, cycle).await
}

/// The reference path: one request per document, per dataset (claim, findings, resolution,
/// health). The service writes with [`write_reports`]; this is kept so a test can prove both
/// leave the same documents.
///
/// # Errors
/// As [`write_reports_with`].
pub async fn write_reports_per_document(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[TradesReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Written, WriteError> {
    let datasets = reports.iter().map(|r| dataset_writes(r, run_id));
    write_per_document(sink, fence, datasets, now, stop).await
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::trades::reconcile::{TradesParams, TradesStatus};

    fn params() -> TradesParams {
        TradesParams {
            now: chrono::Utc
                .with_ymd_and_hms(2025, 10, 21, 14, 30, 0)
                .single()
                .expect("time"),
            window: 3_600,
            reference: "5m".parse().expect("tf"),
            max_lag: 900,
        }
    }

    #[test]
    fn health_documents_name_the_dataset_and_its_reference() {
        let r = TradesReport::informational(
            "SOLUSDT",
            params(),
            TradesStatus::NotExtracted,
            "none".into(),
        );
        let d = health_doc(&r, "run-1");
        assert_eq!(d.get_str("dataset_id").ok(), Some("trades_SOLUSDT"));
        assert_eq!(d.get_str("timeframe").ok(), Some("trades"));
        assert_eq!(d.get_str("reference_table").ok(), Some("klines_m5"));
        assert_eq!(d.get_str("status").ok(), Some("not_extracted"));
        assert_eq!(d.get("completeness"), Some(&Bson::Null));
        assert!(matches!(d.get("window_end"), Some(Bson::DateTime(_))));
        assert_eq!(health_id(&r), "SOLUSDT|trades|2025-10-21T14:30:00Z");
        let (set, _) = finding_doc(&r, &r.findings[0], "run-1");
        assert_eq!(set.get_str("kind").ok(), Some("not_extracted"));
        assert_eq!(
            r.findings[0].key(&r.symbol, TRADES_TIMEFRAME),
            "SOLUSDT|trades|not_extracted"
        );
    }

    #[test]
    fn only_audited_datasets_resolve_findings() {
        let info = TradesReport::informational("X", params(), TradesStatus::ReadError, "e".into());
        assert!(unresolved_filter(&info).is_none());
        let audited = crate::trades::reconcile::TradesAudit::new("X", params(), [])
            .finish(&Default::default());
        let f = unresolved_filter(&audited).expect("audited");
        assert_eq!(f.get_str("timeframe").ok(), Some("trades"));
    }
}
