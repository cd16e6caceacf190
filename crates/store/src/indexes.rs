//! The indexes dm-api's queries need, beyond those the schedulers create for their own writes.
//! The schedulers create them at start-up (with their own); creating one that exists is a no-op.

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;

use crate::sink::{MongoSink, SinkError};

fn named(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

/// Per collection: the indexes behind the API's sorts and filters.
/// - `health_metrics.computed_at`: the newest audit, and the dataset list's lookback window;
/// - `audit_logs.timestamp_id`: findings pages in (timestamp, _id) order, with a cursor;
/// - `audit_logs.resolved_at_timestamp_id`: the same for open or resolved findings only;
/// - `audit_logs.resolved_at_symbol_timeframe`: open findings counted per dataset;
/// - `analytics_correlation_matrix.timeframe_timestamp`: the newest matrix of a timeframe.
pub fn api_indexes() -> Vec<(&'static str, Vec<IndexModel>)> {
    vec![
        (
            "health_metrics",
            vec![named(doc! { "computed_at": -1 }, "computed_at")],
        ),
        (
            "audit_logs",
            vec![
                named(doc! { "timestamp": -1, "_id": -1 }, "timestamp_id"),
                named(
                    doc! { "resolved_at": 1, "timestamp": -1, "_id": -1 },
                    "resolved_at_timestamp_id",
                ),
                named(
                    doc! { "resolved_at": 1, "symbol": 1, "timeframe": 1 },
                    "resolved_at_symbol_timeframe",
                ),
            ],
        ),
        (
            "analytics_correlation_matrix",
            vec![named(
                doc! { "timeframe": 1, "timestamp": -1 },
                "timeframe_timestamp",
            )],
        ),
    ]
}

/// Creates [`api_indexes`] (idempotent).
///
/// # Errors
/// [`SinkError`] when the server refuses or is unreachable.
pub async fn ensure_api_indexes(sink: &MongoSink) -> Result<(), SinkError> {
    for (collection, models) in api_indexes() {
        sink.ensure_indexes(collection, models).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_unique_per_collection() {
        for (collection, models) in api_indexes() {
            let mut names: Vec<String> = models
                .iter()
                .filter_map(|m| m.options.as_ref()?.name.clone())
                .collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n, "{collection}");
            assert_eq!(n, models.len(), "every index is named: {collection}");
        }
    }
}
