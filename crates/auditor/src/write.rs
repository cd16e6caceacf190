//! Writing a cycle's results to MongoDB under the leader's fence.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};
use store::{Batched, Batching, Fence, FencedWrite, MongoSink, Outcome, SinkError};
use tokio_util::sync::CancellationToken;

use crate::dataset::DatasetReport;
use crate::documents::{
    AUDIT_LOGS, HEALTH_METRICS, HEALTH_TTL_INDEX, finding_doc, health_doc, health_id, health_ttl,
    indexes, unresolved_filter,
};

/// Creates the collections' indexes (idempotent), and the health history's TTL index with a
/// lifetime of `health_history_days` (changed in place when it differs).
///
/// # Errors
/// [`SinkError`] when the server refuses or is unreachable.
pub async fn ensure_indexes(sink: &MongoSink, health_history_days: u32) -> Result<(), SinkError> {
    for (collection, models) in indexes() {
        sink.ensure_indexes(collection, models).await?;
    }
    store::indexes::ensure_api_indexes(sink).await?;
    let ttl = health_ttl(health_history_days);
    sink.ensure_ttl_index(HEALTH_METRICS, HEALTH_TTL_INDEX, "computed_at", ttl)
        .await
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
    sink.ids(AUDIT_LOGS, stored_row_keys_filter(since)).await
}

/// The filter of [`stored_row_keys`]. Only row findings carry an `open_time` (every other
/// kind stores null, which no date range matches), so the range alone selects them: equality
/// then range, a shape every planner serves from the `sched_unresolved_open_time` index.
pub fn stored_row_keys_filter(since: DateTime<Utc>) -> Document {
    doc! {
        "resolved_at": mongodb::bson::Bson::Null,
        "open_time": { "$gte": store::bson_safe::date(since) },
    }
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

/// Writes every report with the default [`Batching`]: see [`write_reports_with`].
///
/// # Errors
/// As [`write_reports_with`].
pub async fn write_reports(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[DatasetReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Written, WriteError> {
    write_reports_with(sink, fence, reports, run_id, now, stop, Batching::default()).await
}

/// The statements of a cycle: (findings, resolutions, health documents). Pure. The
/// resolutions are one statement per group of datasets whose filters differ only in the
/// symbol (in practice one or two per timeframe): the same documents as one per dataset, in a
/// few statements instead of thousands.
pub fn statements(reports: &[DatasetReport], run_id: &str) -> Statements {
    statements_of(reports.iter().map(|r| dataset_writes(r, run_id)))
}

/// One klines dataset's documents.
fn dataset_writes(r: &DatasetReport, run_id: &str) -> DatasetWrites {
    let findings = r.findings.iter().map(|f| {
        let (set, set_on_insert) = finding_doc(r, f, run_id);
        (f.key(&r.symbol, r.timeframe.label()), set, set_on_insert)
    });
    DatasetWrites {
        findings: findings.collect(),
        unresolved: unresolved_filter(r).map(|filter| {
            (
                filter,
                store::bson_safe::date(r.params.now),
                r.symbol.clone(),
            )
        }),
        health: (health_id(r), health_doc(r, run_id)),
    }
}

/// One dataset's documents, klines or trades: what both the batched and the per-document
/// writers send for it.
pub(crate) struct DatasetWrites {
    /// Its findings' upserts: (key, `$set` fields, `$setOnInsert` fields).
    pub(crate) findings: Vec<(String, Document, Document)>,
    /// The resolution of its open findings not seen this cycle: (filter, resolution time,
    /// symbol); `None` when the dataset was not audited, so nothing is known to be resolved.
    pub(crate) unresolved: Option<(Document, mongodb::bson::Bson, String)>,
    /// Its health document: (key, fields).
    pub(crate) health: (String, Document),
}

/// The statements of a cycle from its datasets' documents: every finding an upsert, every
/// health document an insert, the resolutions grouped by [`resolutions`].
pub(crate) fn statements_of(datasets: impl IntoIterator<Item = DatasetWrites>) -> Statements {
    let mut findings = Vec::new();
    let mut unresolved = Vec::new();
    let mut health = Vec::new();
    for d in datasets {
        let upserts = d.findings.into_iter();
        findings.extend(
            upserts.map(|(key, set, set_on_insert)| FencedWrite::Upsert {
                key,
                set,
                set_on_insert,
            }),
        );
        unresolved.extend(d.unresolved);
        let (key, set) = d.health;
        health.push(FencedWrite::Insert { key, set });
    }
    (findings, resolutions(unresolved), health)
}

/// The statements resolving the findings not seen again, from each audited dataset's
/// (filter, resolution time, symbol): datasets whose filters differ only in the symbol share
/// one statement (`symbol: {$in: [...]}`), so a cycle sends one per timeframe, not one per
/// dataset.
fn resolutions(
    unresolved: impl IntoIterator<Item = (Document, mongodb::bson::Bson, String)>,
) -> Vec<FencedWrite> {
    let mut groups: Vec<(Document, mongodb::bson::Bson, Vec<String>)> = Vec::new();
    for (mut filter, at, symbol) in unresolved {
        filter.remove("symbol");
        match groups.iter_mut().find(|(f, a, _)| *f == filter && *a == at) {
            Some((_, _, symbols)) => symbols.push(symbol),
            None => groups.push((filter, at, vec![symbol])),
        }
    }
    groups
        .into_iter()
        .map(|(mut filter, at, symbols)| {
            filter.insert("symbol", doc! { "$in": symbols });
            FencedWrite::UpdateMany {
                filter,
                set: doc! { "resolved_at": at },
            }
        })
        .collect()
}

/// Writes every report as a few unordered commands: findings (upserts) and health documents
/// (inserts, new each cycle) first, then the resolution of the findings not seen again (after
/// the findings, whose `last_seen` it reads). Each round of commands (one per collection) is
/// one transaction that re-claims the fence; a fenced statement voids its round and stops the
/// write. Safe to repeat: every write is keyed. Writes the same documents as
/// [`write_reports_per_document`].
///
/// # Errors
/// [`WriteError::Sink`] ([`SinkError::Fenced`] when a newer term wrote or claimed the fence,
/// [`SinkError::DeadlinePassed`] after the write deadline); [`WriteError::Stopped`] when `stop`
/// was cancelled.
pub async fn write_reports_with(
    sink: &MongoSink,
    fence: &Fence,
    reports: &[DatasetReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
    batching: Batching,
) -> Result<Written, WriteError> {
    let cycle = statements(reports, run_id);
    write_statements(sink, fence, now, stop, batching, cycle).await
}

/// A cycle's statements: (findings, resolutions, health documents).
pub type Statements = (Vec<FencedWrite>, Vec<FencedWrite>, Vec<FencedWrite>);

/// Sends a cycle's statements (findings, resolutions, health documents) as
/// [`write_reports_with`] describes; the trades datasets' writes take the same path.
///
/// # Errors
/// As [`write_reports_with`].
pub async fn write_statements(
    sink: &MongoSink,
    fence: &Fence,
    now: DateTime<Utc>,
    stop: &CancellationToken,
    batching: Batching,
    (findings, resolutions, health): Statements,
) -> Result<Written, WriteError> {
    let counts = (findings.len() as u64, health.len() as u64);
    let first = [(AUDIT_LOGS, findings), (HEALTH_METRICS, health)];
    let [_, _] = done(
        sink.write_batched(fence, now, &first, batching, stop)
            .await?,
    )?;
    let then = [(AUDIT_LOGS, resolutions)];
    let [r] = done(
        sink.write_batched(fence, now, &then, batching, stop)
            .await?,
    )?;
    Ok(Written {
        findings: counts.0,
        health: counts.1,
        resolved: r.modified,
    })
}

/// The outcomes of a finished batched write, one per stream (`write_batched` returns exactly
/// one per stream given, so the conversion cannot fail).
fn done<const N: usize>(b: Batched) -> Result<[Outcome; N], WriteError> {
    match b {
        Batched::Done(o) => o.try_into().map_err(|_| WriteError::Stopped),
        Batched::Stopped => Err(WriteError::Stopped),
    }
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
    reports: &[DatasetReport],
    run_id: &str,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Written, WriteError> {
    let datasets = reports.iter().map(|r| dataset_writes(r, run_id));
    write_per_document(sink, fence, datasets, now, stop).await
}

/// Sends each dataset's documents one request at a time, as the reference paths describe:
/// claim the fence, upsert the findings, resolve the findings not seen again, upsert the
/// health document.
///
/// # Errors
/// As [`write_reports_with`].
pub(crate) async fn write_per_document(
    sink: &MongoSink,
    fence: &Fence,
    datasets: impl IntoIterator<Item = DatasetWrites>,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Written, WriteError> {
    let mut w = Written::default();
    for d in datasets {
        // The fence is re-checked per batch: once a newer term has claimed it, a stale leader
        // writes nothing more, not even keys the newer term has not written yet.
        if stop.is_cancelled() {
            return Err(WriteError::Stopped);
        }
        sink.claim_fence(fence, now).await?;
        for (key, set, on_insert) in d.findings {
            if stop.is_cancelled() {
                return Err(WriteError::Stopped);
            }
            sink.upsert_fenced(AUDIT_LOGS, &key, fence, set, on_insert)
                .await?;
            w.findings += 1;
        }
        if let Some((filter, at, _symbol)) = d.unresolved {
            let set = doc! { "resolved_at": at };
            w.resolved += sink
                .update_many_fenced(AUDIT_LOGS, filter, fence, set)
                .await?;
        }
        let (key, set) = d.health;
        sink.upsert_fenced(HEALTH_METRICS, &key, fence, set, Document::new())
            .await?;
        w.health += 1;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DatasetAudit, Params};
    use crate::score::Profile;
    use store::testing::at;

    fn report(symbol: &str, tf: &str) -> DatasetReport {
        let p = Params {
            now: at(2025, 10, 22, 0, 30, 0),
            window: 86_400,
            timeframe: tf.parse().expect("tf"),
            tolerance: 60,
            max_lag: 7_200,
            profile: Profile::V3,
            max_row_findings: 100,
        };
        DatasetAudit::new(symbol, p, None).finish()
    }

    #[test]
    fn resolutions_are_one_statement_per_timeframe_naming_its_symbols() {
        let reports = [
            report("A", "1h"),
            report("B", "1h"),
            report("A", "5m"),
            report("C", "1h"),
        ];
        let (_, resolutions, health) = statements(&reports, "run");
        assert_eq!(health.len(), 4);
        assert_eq!(resolutions.len(), 2);
        let FencedWrite::UpdateMany { filter, .. } = &resolutions[0] else {
            panic!("a multi-document update")
        };
        assert_eq!(
            filter.get_document("symbol").expect("symbol"),
            &doc! { "$in": ["A", "B", "C"] }
        );
        assert_eq!(filter.get_str("timeframe").ok(), Some("1h"));
    }
}
