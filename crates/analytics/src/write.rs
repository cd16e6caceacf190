//! Writing a cycle's documents to MongoDB under the leader's fence.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use store::{Fence, MongoSink, SinkError};
use tokio_util::sync::CancellationToken;

use crate::analysis::Analysis;
use crate::documents::{indexes, matrix_document, matrix_id, metric_document, metric_id};
use crate::metric::{Kind, MATRIX_COLLECTION};
use crate::metrics::MATRIX_LABEL;
use crate::options::Options;

/// Creates every collection's index (idempotent).
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

/// Why writing a cycle's documents stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The sink failed, was fenced, or the write deadline passed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The term ended (or shutdown began): stopped between two writes.
    #[error("stopped between writes: the term ended")]
    Stopped,
}

impl WriteError {
    /// Whether a newer term fenced the write.
    pub fn is_fenced(&self) -> bool {
        matches!(self, WriteError::Sink(e) if e.is_fenced())
    }
}

/// Upserts every document of `analyses` keyed by (symbol, timeframe, timestamp), re-claiming
/// the fence before each timeframe's batch and stopping between writes once `stop` is
/// cancelled. Regime is written for 1h only (`analytics.md` §3.8). Returns the documents
/// written per metric label.
///
/// # Errors
/// [`WriteError::Sink`] ([`SinkError::Fenced`] when a newer term wrote or claimed the fence);
/// [`WriteError::Stopped`].
pub async fn write_analyses(
    sink: &MongoSink,
    fence: &Fence,
    analyses: &[Analysis],
    options: &Options,
    computed_at: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<BTreeMap<&'static str, u64>, WriteError> {
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for a in analyses {
        if stop.is_cancelled() {
            return Err(WriteError::Stopped);
        }
        sink.claim_fence(fence, computed_at).await?;
        let tf = a.timeframe;
        for (symbol, d) in a.documents(options) {
            if stop.is_cancelled() {
                return Err(WriteError::Stopped);
            }
            if d.kind == Kind::Regime && !crate::analysis::is_hourly(tf) {
                continue;
            }
            let set = metric_document(&symbol, tf, &d, computed_at);
            let key = metric_id(&symbol, tf, d.timestamp);
            sink.upsert_fenced(d.kind.collection(), &key, fence, set, Document::new())
                .await?;
            *counts.entry(d.kind.as_str()).or_default() += 1;
        }
        if let Some(Ok(c)) = &a.correlation {
            let set = matrix_document(c, tf, computed_at);
            sink.upsert_fenced(
                MATRIX_COLLECTION,
                &matrix_id(tf, c.timestamp),
                fence,
                set,
                Document::new(),
            )
            .await?;
            *counts.entry(MATRIX_LABEL).or_default() += 1;
        }
    }
    Ok(counts)
}
