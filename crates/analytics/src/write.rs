//! Writing a cycle's documents to MongoDB under the leader's fence.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use mongodb::bson::Document;
use store::{Batched, Batching, Fence, FencedWrite, MongoSink, SinkError};
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

/// Upserts every document of `analyses` with the default [`Batching`]: see
/// [`write_analyses_with`].
///
/// # Errors
/// As [`write_analyses_with`].
pub async fn write_analyses(
    sink: &MongoSink,
    fence: &Fence,
    analyses: &[Analysis],
    options: &Options,
    computed_at: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<BTreeMap<&'static str, u64>, WriteError> {
    let b = Batching::default();
    write_analyses_with(sink, fence, analyses, options, computed_at, stop, b).await
}

/// The statements of a cycle, per collection: (collection, metric label, upserts). Pure.
/// Regime is written for 1h only.
pub fn statements(
    analyses: &[Analysis],
    options: &Options,
    computed_at: DateTime<Utc>,
) -> Vec<(&'static str, &'static str, Vec<FencedWrite>)> {
    let mut by: BTreeMap<&'static str, (&'static str, Vec<FencedWrite>)> = BTreeMap::new();
    let mut push = |collection: &'static str, label: &'static str, key: String, set| {
        by.entry(collection)
            .or_insert((label, Vec::new()))
            .1
            .push(FencedWrite::Upsert {
                key,
                set,
                set_on_insert: Document::new(),
            });
    };
    for a in analyses {
        let tf = a.timeframe;
        for (symbol, d) in a.documents(options) {
            if d.kind == Kind::Regime && !crate::analysis::is_hourly(tf) {
                continue;
            }
            let set = metric_document(&symbol, tf, &d, computed_at);
            let key = metric_id(&symbol, tf, d.timestamp);
            push(d.kind.collection(), d.kind.as_str(), key, set);
        }
        // A matrix past the document limit is left out (counted as skipped): the rest lands.
        if let Some(Ok(c)) = &a.correlation
            && c.matrix_fits()
        {
            let set = matrix_document(c, tf, computed_at);
            push(
                MATRIX_COLLECTION,
                MATRIX_LABEL,
                matrix_id(tf, c.timestamp),
                set,
            );
        }
    }
    by.into_iter().map(|(c, (l, w))| (c, l, w)).collect()
}

/// Upserts every document of `analyses` keyed by (symbol, timeframe, timestamp) as a few
/// unordered `update` commands, in rounds of up to `batching.concurrency` collections, each
/// round one transaction that re-claims the fence, stopping between rounds once `stop` is
/// cancelled. Writes
/// the same documents as [`write_analyses_per_document`]. Returns the documents written per
/// metric label.
///
/// # Errors
/// [`WriteError::Sink`] ([`SinkError::Fenced`] when a newer term wrote or claimed the fence);
/// [`WriteError::Stopped`].
pub async fn write_analyses_with(
    sink: &MongoSink,
    fence: &Fence,
    analyses: &[Analysis],
    options: &Options,
    computed_at: DateTime<Utc>,
    stop: &CancellationToken,
    batching: Batching,
) -> Result<BTreeMap<&'static str, u64>, WriteError> {
    let all = statements(analyses, options, computed_at);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (_, label, w) in &all {
        *counts.entry(*label).or_default() += w.len() as u64;
    }
    let streams: Vec<(&str, Vec<FencedWrite>)> = all.into_iter().map(|(c, _, w)| (c, w)).collect();
    match sink
        .write_batched(fence, computed_at, &streams, batching, stop)
        .await?
    {
        Batched::Done(_) => Ok(counts),
        Batched::Stopped => Err(WriteError::Stopped),
    }
}

/// The reference path: one request per document, re-claiming the fence before each
/// timeframe. The service writes with [`write_analyses`]; this is kept so a test can prove both
/// leave the same documents.
///
/// # Errors
/// As [`write_analyses_with`].
pub async fn write_analyses_per_document(
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
        if let Some(Ok(c)) = &a.correlation
            && c.matrix_fits()
        {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Skip;
    use crate::testdata::{at, h1, square};

    fn analysis(symbols: usize) -> Analysis {
        Analysis {
            timeframe: h1(),
            symbols: Vec::new(),
            correlation: Some(Ok(square(symbols))),
        }
    }

    fn collections(a: &Analysis) -> Vec<(&'static str, usize)> {
        statements(std::slice::from_ref(a), &Options::default(), at(1))
            .into_iter()
            .map(|(c, _, w)| (c, w.len()))
            .collect()
    }

    #[test]
    fn a_matrix_past_the_document_limit_is_left_out_and_counted_and_the_rest_is_written() {
        let big = analysis(1_000);
        assert_eq!(collections(&big), [("analytics_correlation", 1)]);
        let skipped = big.skipped();
        assert_eq!(skipped.get(&(Kind::Correlation, Skip::TooLarge)), Some(&1));
        let small = analysis(50);
        assert_eq!(
            collections(&small),
            [("analytics_correlation", 1), (MATRIX_COLLECTION, 1)]
        );
        assert!(small.skipped().is_empty());
    }
}
