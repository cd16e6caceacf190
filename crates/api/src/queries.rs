//! What each route reads: the filters (pure, tested without a server) and the bounded queries
//! that run them. Every query is limited and sorted along an index of `store::indexes`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use mongodb::bson::{Bson, Document, doc};
use store::bson_safe::date;

use crate::convert;
use crate::model::{
    AnalyticsResponse, AnalyticsSeries, CorrelationMatrix, DatasetDetail, DatasetSummary, Finding,
    FindingsPage, Kind, Metric, Severity, Status, Timeframe,
};
use crate::params::{Cursor, FindingState};
use crate::problem::ApiError;
use crate::read::{Find, Reader};

/// The auditor's health documents.
pub const HEALTH: &str = "health_metrics";
/// The auditor's findings.
pub const AUDIT_LOGS: &str = "audit_logs";
/// The correlation matrices.
pub const MATRIX: &str = "analytics_correlation_matrix";
/// Health documents read for the dataset list, at most: 1,000 datasets × 10 cycles of lookback.
pub const MAX_HEALTH_SCAN: i64 = 10_000;
/// Open findings counted per dataset list, at most (beyond, counts are lower bounds).
pub const MAX_OPEN_GROUPS: i64 = 10_000;

/// The dataset list's filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatasetFilter {
    /// Only this symbol.
    pub symbol: Option<String>,
    /// Only this timeframe.
    pub timeframe: Option<Timeframe>,
    /// Only this latest status.
    pub status: Option<Status>,
}

/// The findings' filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingFilter {
    /// Open, resolved or both.
    pub state: FindingState,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this symbol.
    pub symbol: Option<String>,
    /// Only this timeframe.
    pub timeframe: Option<Timeframe>,
    /// Only `timestamp ≥ since`.
    pub since: Option<DateTime<Utc>>,
    /// After this position of the sort order.
    pub after: Option<Cursor>,
}

/// The health documents of the dataset list: every dataset audited within `lookback` of the
/// newest audit.
pub fn health_filter(f: &DatasetFilter, newest: DateTime<Utc>, lookback: Duration) -> Document {
    let since = newest.checked_sub_signed(lookback).unwrap_or(newest);
    let mut filter = doc! { "computed_at": { "$gte": date(since) } };
    if let Some(s) = &f.symbol {
        filter.insert("symbol", s);
    }
    if let Some(tf) = f.timeframe {
        filter.insert("timeframe", tf.label());
    }
    filter
}

/// The `audit_logs` filter of a findings page.
pub fn finding_filter(f: &FindingFilter) -> Document {
    let mut filter = Document::new();
    match f.state {
        FindingState::Open => {
            filter.insert("resolved_at", Bson::Null);
        }
        FindingState::Resolved => {
            filter.insert("resolved_at", doc! { "$ne": Bson::Null });
        }
        FindingState::All => {}
    }
    if let Some(s) = f.severity {
        filter.insert("severity", s.as_str());
    }
    if let Some(k) = f.kind {
        filter.insert("kind", k.as_str());
    }
    if let Some(s) = &f.symbol {
        filter.insert("symbol", s);
    }
    if let Some(tf) = f.timeframe {
        filter.insert("timeframe", tf.label());
    }
    let mut time = Document::new();
    if let Some(since) = f.since {
        time.insert("$gte", date(since));
    }
    match &f.after {
        Some(c) => {
            let at = Bson::DateTime(mongodb::bson::DateTime::from_millis(c.millis));
            let mut before = time.clone();
            before.insert("$lt", at.clone());
            filter.insert(
                "$or",
                vec![
                    doc! { "timestamp": before },
                    doc! { "timestamp": at, "_id": { "$lt": &c.id } },
                ],
            );
        }
        None if !time.is_empty() => {
            filter.insert("timestamp", time);
        }
        None => {}
    }
    filter
}

/// The open findings of every dataset, counted.
pub fn open_counts_pipeline(f: &DatasetFilter) -> Vec<Document> {
    let mut matched = doc! { "resolved_at": Bson::Null };
    if let Some(s) = &f.symbol {
        matched.insert("symbol", s);
    }
    if let Some(tf) = f.timeframe {
        matched.insert("timeframe", tf.label());
    }
    vec![
        doc! { "$match": matched },
        doc! { "$group": { "_id": { "symbol": "$symbol", "timeframe": "$timeframe" }, "n": { "$sum": 1 } } },
        doc! { "$limit": MAX_OPEN_GROUPS },
    ]
}

fn count_of(d: &Document) -> Option<((String, Timeframe), u64)> {
    let id = d.get_document("_id").ok()?;
    let key = convert::dataset_key(id)?;
    let n = match d.get("n")? {
        Bson::Int32(n) => u64::try_from(*n).ok()?,
        Bson::Int64(n) => u64::try_from(*n).ok()?,
        _ => return None,
    };
    Some((key, n))
}

/// When the newest audit ran, if any did.
///
/// # Errors
/// [`ApiError`] when Mongo fails.
pub async fn newest_audit(r: &Reader) -> Result<Option<DateTime<Utc>>, ApiError> {
    let docs = r
        .find(Find {
            collection: HEALTH,
            filter: Document::new(),
            sort: doc! { "computed_at": -1 },
            limit: 1,
            projection: doc! { "computed_at": 1 },
        })
        .await?;
    Ok(docs.first().and_then(|d| match d.get("computed_at") {
        Some(Bson::DateTime(t)) => DateTime::from_timestamp_millis(t.timestamp_millis()),
        _ => None,
    }))
}

/// Every dataset's latest health, filtered. Returns the list and how many documents were
/// skipped as malformed.
///
/// # Errors
/// [`ApiError`] when Mongo fails.
pub async fn datasets(
    r: &Reader,
    f: &DatasetFilter,
    lookback: Duration,
) -> Result<(Vec<DatasetSummary>, usize), ApiError> {
    let Some(newest) = newest_audit(r).await? else {
        return Ok((Vec::new(), 0));
    };
    let docs = r
        .find(Find {
            collection: HEALTH,
            filter: health_filter(f, newest, lookback),
            sort: doc! { "computed_at": -1 },
            limit: MAX_HEALTH_SCAN,
            projection: doc! {
                "symbol": 1, "timeframe": 1, "status": 1, "computed_at": 1, "quality_score": 1,
                "completeness": 1, "freshness_seconds": 1,
            },
        })
        .await?;
    let open: HashMap<(String, Timeframe), u64> = r
        .aggregate(AUDIT_LOGS, open_counts_pipeline(f))
        .await?
        .iter()
        .filter_map(count_of)
        .collect();
    let (mut list, skipped) = convert::latest_per_dataset(&docs, &open);
    if let Some(status) = f.status {
        list.retain(|d| d.status == status);
    }
    Ok((list, skipped))
}

/// One dataset's latest health, open findings and history in `[from, to)`.
///
/// # Errors
/// [`ApiError::NotFound`] when the dataset was never audited; others when Mongo fails.
pub async fn dataset(
    r: &Reader,
    symbol: &str,
    tf: Timeframe,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    limit: u32,
) -> Result<DatasetDetail, ApiError> {
    let key = doc! { "symbol": symbol, "timeframe": tf.label() };
    let latest = r
        .find(Find {
            collection: HEALTH,
            filter: key.clone(),
            sort: doc! { "computed_at": -1 },
            limit: 1,
            projection: Document::new(),
        })
        .await?;
    let Some(latest) = latest.first().and_then(convert::health_point) else {
        return Err(ApiError::NotFound(format!(
            "no audit of {symbol} {} was ever written",
            tf.label()
        )));
    };
    let mut range = key.clone();
    range.insert("computed_at", doc! { "$gte": date(from), "$lt": date(to) });
    let history = r
        .find(Find {
            collection: HEALTH,
            filter: range,
            sort: doc! { "computed_at": -1 },
            limit: i64::from(limit),
            projection: Document::new(),
        })
        .await?
        .iter()
        .filter_map(convert::health_point)
        .collect();
    let mut open = key;
    open.insert("resolved_at", Bson::Null);
    let open_findings = r
        .find(Find {
            collection: AUDIT_LOGS,
            filter: open,
            sort: doc! { "timestamp": -1 },
            limit: MAX_OPEN_GROUPS,
            projection: doc! { "_id": 1 },
        })
        .await?
        .len() as u64;
    Ok(DatasetDetail {
        symbol: symbol.to_owned(),
        timeframe: tf,
        latest,
        open_findings,
        from,
        to,
        history,
    })
}

/// One page of findings, newest `timestamp` first.
///
/// # Errors
/// [`ApiError`] when Mongo fails.
pub async fn findings(r: &Reader, f: &FindingFilter, limit: u32) -> Result<FindingsPage, ApiError> {
    let docs = r
        .find(Find {
            collection: AUDIT_LOGS,
            filter: finding_filter(f),
            sort: doc! { "timestamp": -1, "_id": -1 },
            limit: i64::from(limit) + 1,
            projection: Document::new(),
        })
        .await?;
    let more = docs.len() > limit as usize;
    let findings: Vec<Finding> = docs
        .iter()
        .take(limit as usize)
        .filter_map(convert::finding)
        .collect();
    // The cursor is the last document read, even if it was skipped as malformed.
    let next_cursor = more
        .then(|| docs.get(limit as usize - 1))
        .flatten()
        .and_then(|d| {
            let id = d.get_str("_id").ok()?;
            let Some(Bson::DateTime(t)) = d.get("timestamp") else {
                return None;
            };
            Some(
                Cursor {
                    millis: t.timestamp_millis(),
                    id: id.to_owned(),
                }
                .encode(),
            )
        });
    Ok(FindingsPage {
        findings,
        next_cursor,
    })
}

/// A metric's documents for `symbol`: the latest per timeframe, or those in `range`.
///
/// # Errors
/// [`ApiError::NotFound`] when the metric has no document for the symbol at all.
pub async fn analytics(
    r: &Reader,
    metric: Metric,
    symbol: &str,
    timeframe: Option<Timeframe>,
    range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    limit: u32,
) -> Result<AnalyticsResponse, ApiError> {
    let collection = metric.collection();
    let timeframes: Vec<Timeframe> = timeframe.map_or_else(|| Timeframe::ALL.to_vec(), |t| vec![t]);
    let queries = timeframes.iter().map(|tf| {
        let mut filter = doc! { "symbol": symbol, "timeframe": tf.label() };
        if let Some((from, to)) = range {
            filter.insert("timestamp", doc! { "$gte": date(from), "$lt": date(to) });
        }
        r.find(Find {
            collection: &collection,
            filter,
            sort: doc! { "timestamp": -1 },
            limit: if range.is_some() { i64::from(limit) } else { 1 },
            projection: Document::new(),
        })
    });
    let results = futures::future::try_join_all(queries).await?;
    let series: Vec<AnalyticsSeries> = timeframes
        .into_iter()
        .zip(results)
        .filter(|(_, docs)| !docs.is_empty())
        .map(|(timeframe, docs)| AnalyticsSeries {
            timeframe,
            points: docs.iter().filter_map(convert::analytics_point).collect(),
        })
        .collect();
    if series.is_empty() && !exists(r, &collection, doc! { "symbol": symbol }).await? {
        return Err(ApiError::NotFound(format!(
            "no {} result for {symbol} was ever written",
            metric.as_str()
        )));
    }
    Ok(AnalyticsResponse {
        metric,
        symbol: symbol.to_owned(),
        series,
    })
}

async fn exists(r: &Reader, collection: &str, filter: Document) -> Result<bool, ApiError> {
    let docs = r
        .find(Find {
            collection,
            filter,
            sort: Document::new(),
            limit: 1,
            projection: doc! { "_id": 1 },
        })
        .await?;
    Ok(!docs.is_empty())
}

/// The newest correlation matrix of `tf`.
///
/// # Errors
/// [`ApiError::NotFound`] when none was written.
pub async fn correlation(r: &Reader, tf: Timeframe) -> Result<CorrelationMatrix, ApiError> {
    let docs = r
        .find(Find {
            collection: MATRIX,
            filter: doc! { "timeframe": tf.label() },
            sort: doc! { "timestamp": -1 },
            limit: 1,
            projection: Document::new(),
        })
        .await?;
    docs.first().and_then(convert::matrix).ok_or_else(|| {
        ApiError::NotFound(format!("no {} correlation matrix was written", tf.label()))
    })
}

/// A scheduler's fence: the leader that last wrote, its term and when.
#[derive(Debug, Clone, PartialEq)]
pub struct FenceInfo {
    /// The Lease (`data-manager-auditor`).
    pub lease: String,
    /// The holder that claimed it.
    pub holder: String,
    /// Its term.
    pub term: i64,
    /// When the holder last started writing a cycle's results.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Every scheduler's fence document (one per Lease).
///
/// # Errors
/// [`ApiError`] when Mongo fails.
pub async fn fences(r: &Reader) -> Result<Vec<FenceInfo>, ApiError> {
    let docs = r
        .find(Find {
            collection: store::sink::FENCE_COLLECTION,
            filter: Document::new(),
            sort: doc! { "_id": 1 },
            limit: 20,
            projection: Document::new(),
        })
        .await?;
    Ok(docs
        .iter()
        .filter_map(|d| {
            Some(FenceInfo {
                lease: d.get_str("_id").ok()?.to_owned(),
                holder: d.get_str("holder").unwrap_or_default().to_owned(),
                term: d.get_i64("term").ok()?,
                updated_at: match d.get("updated_at") {
                    Some(Bson::DateTime(t)) => {
                        DateTime::from_timestamp_millis(t.timestamp_millis())
                    }
                    _ => None,
                },
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::testing::at;

    #[test]
    fn open_findings_of_one_symbol_since_an_instant() {
        let f = FindingFilter {
            symbol: Some("BTCUSDT".into()),
            since: Some(at(2025, 10, 21, 0, 0, 0)),
            severity: Some(Severity::High),
            ..FindingFilter::default()
        };
        assert_eq!(
            finding_filter(&f),
            doc! {
                "resolved_at": Bson::Null, "severity": "high", "symbol": "BTCUSDT",
                "timestamp": { "$gte": date(at(2025, 10, 21, 0, 0, 0)) },
            }
        );
    }

    #[test]
    fn a_cursor_continues_strictly_after_the_last_sort_key() {
        let f = FindingFilter {
            state: FindingState::All,
            since: Some(at(2025, 10, 21, 0, 0, 0)),
            after: Some(Cursor {
                millis: 1_761_000_000_000,
                id: "B".into(),
            }),
            ..FindingFilter::default()
        };
        let at_cursor = Bson::DateTime(mongodb::bson::DateTime::from_millis(1_761_000_000_000));
        assert_eq!(
            finding_filter(&f),
            doc! { "$or": [
                { "timestamp": { "$gte": date(at(2025, 10, 21, 0, 0, 0)), "$lt": at_cursor.clone() } },
                { "timestamp": at_cursor, "_id": { "$lt": "B" } },
            ] }
        );
    }

    #[test]
    fn resolved_findings_have_a_resolution_time() {
        let f = FindingFilter {
            state: FindingState::Resolved,
            ..FindingFilter::default()
        };
        assert_eq!(
            finding_filter(&f),
            doc! { "resolved_at": { "$ne": Bson::Null } }
        );
    }

    #[test]
    fn the_dataset_list_looks_back_from_the_newest_audit() {
        let f = DatasetFilter {
            timeframe: Some(Timeframe::H1),
            ..DatasetFilter::default()
        };
        assert_eq!(
            health_filter(&f, at(2025, 10, 21, 12, 0, 0), Duration::minutes(15)),
            doc! { "computed_at": { "$gte": date(at(2025, 10, 21, 11, 45, 0)) }, "timeframe": "1h" }
        );
    }
}
