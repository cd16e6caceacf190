//! Writing a cycle's results to MongoDB under the leader's fence.

use chrono::{DateTime, Utc};
use store::{Fence, MongoSink, SinkError};

use crate::dataset::DatasetReport;
use crate::documents::{
    AUDIT_LOGS, HEALTH_METRICS, finding_doc, health_doc, health_id, indexes, unresolved_filter,
};

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

/// Claims the fence, then upserts every report's health document and findings and marks the
/// findings that were not seen again as resolved. Safe to repeat: every write is keyed.
///
/// # Errors
/// [`SinkError::Fenced`] when a newer term wrote; other [`SinkError`]s on failure.
pub async fn write_reports(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[DatasetReport],
    run_id: &str,
    now: DateTime<Utc>,
) -> Result<Written, SinkError> {
    sink.claim_fence(fence, now).await?;
    let mut w = Written::default();
    for r in reports {
        for f in &r.findings {
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
