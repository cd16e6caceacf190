//! Writing a cycle's results to MongoDB under the leader's fence.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use store::{Fence, MongoSink, SinkError};
use tokio_util::sync::CancellationToken;

use crate::dataset::DatasetReport;
use crate::documents::{
    AUDIT_LOGS, HEALTH_METRICS, finding_doc, health_doc, health_id, indexes, unresolved_filter,
};
use crate::finding::Check;

/// Creates the collections' indexes (idempotent).
///
/// # Errors
/// [`SinkError`] when the server refuses or is unreachable.
pub async fn ensure_indexes(sink: &MongoSink) -> Result<(), SinkError> {
    for (collection, models) in indexes() {
        sink.ensure_indexes(collection, models).await?;
    }
    store::indexes::ensure_api_indexes(sink).await?;
    Ok(())
}

/// The keys of the row findings stored and not resolved whose row opened at or after `since`:
/// the row cap never applies to them.
///
/// # Errors
/// [`SinkError`] when the query fails.
pub async fn stored_row_keys(
    sink: &MongoSink,
    since: DateTime<Utc>,
) -> Result<HashSet<String>, SinkError> {
    let kinds: Vec<&str> = Check::ALL
        .iter()
        .filter(|c| c.is_row_level())
        .map(|c| c.as_str())
        .collect();
    let filter = mongodb::bson::doc! {
        "kind": { "$in": kinds },
        "resolved_at": mongodb::bson::Bson::Null,
        "open_time": { "$gte": store::bson_safe::date(since) },
    };
    sink.ids(AUDIT_LOGS, filter).await
}

/// Why writing a cycle's reports stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The sink failed, was fenced, or the write deadline passed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The term ended (or shutdown began): stopped between two writes.
    #[error("stopped between writes: the term ended")]
    Stopped,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Health documents upserted.
    pub health: u64,
    /// Findings upserted.
    pub findings: u64,
    /// Findings newly marked resolved.
    pub resolved: u64,
}

impl Written {
    /// Both writes' totals.
    pub fn plus(self, o: Written) -> Written {
        Written {
            health: self.health + o.health,
            findings: self.findings + o.findings,
            resolved: self.resolved + o.resolved,
        }
    }
}

/// Writes every report: per dataset (one batch), re-claims the fence, upserts the findings,
/// marks the findings that were not seen again as resolved and upserts the health document.
/// Safe to repeat: every write is keyed. Stops between writes once `stop` is cancelled.
///
/// # Errors
/// [`WriteError::Sink`] ([`SinkError::Fenced`] when a newer term wrote or claimed the fence,
/// [`SinkError::DeadlinePassed`] after the write deadline); [`WriteError::Stopped`] when `stop`
/// was cancelled.
pub async fn write_reports(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[DatasetReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Written, WriteError> {
    let mut w = Written::default();
    for r in reports {
        // The fence is re-checked per batch: once a newer term has claimed it, a stale leader
        // writes nothing more, not even keys the newer term has not written yet.
        if stop.is_cancelled() {
            return Err(WriteError::Stopped);
        }
        sink.claim_fence(fence, now).await?;
        for f in &r.findings {
            if stop.is_cancelled() {
                return Err(WriteError::Stopped);
            }
            let (set, on_insert) = finding_doc(r, f, run_id);
            let key = f.key(&r.symbol, r.timeframe.label());
            sink.upsert_fenced(AUDIT_LOGS, &key, fence, set, on_insert)
                .await?;
            w.findings += 1;
        }
        if let Some(filter) = unresolved_filter(r) {
            w.resolved += sink
                .update_many_fenced(
                    AUDIT_LOGS,
                    filter,
                    fence,
                    mongodb::bson::doc! { "resolved_at": store::bson_safe::date(r.params.now) },
                )
                .await?;
        }
        sink.upsert_fenced(
            HEALTH_METRICS,
            &health_id(r),
            fence,
            health_doc(r, run_id),
            mongodb::bson::Document::new(),
        )
        .await?;
        w.health += 1;
    }
    Ok(w)
}
