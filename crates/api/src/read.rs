//! Bounded reads of the results database. Every query carries a limit and `maxTimeMS`, and the
//! client waits no longer than the same bound; failures become [`ApiError::Unavailable`] (503)
//! unless the server refused the query itself.

use std::time::Duration;

use futures::TryStreamExt;
use mongodb::bson::Document;
use mongodb::error::ErrorKind;
use mongodb::options::{AggregateOptions, FindOptions};
use store::MongoSink;

use crate::problem::ApiError;

/// The MongoDB code of a query that ran out of `maxTimeMS`.
const MAX_TIME_EXPIRED: i32 = 50;

/// A read-only handle on the results database.
#[derive(Debug, Clone)]
pub struct Reader {
    sink: MongoSink,
    timeout: Duration,
}

/// One bounded `find`.
#[derive(Debug, Clone)]
pub struct Find<'a> {
    /// The collection.
    pub collection: &'a str,
    /// The filter.
    pub filter: Document,
    /// The sort (should match an index).
    pub sort: Document,
    /// At most this many documents.
    pub limit: i64,
    /// Fields to return (all when empty).
    pub projection: Document,
}

fn classify(op: &str, e: &mongodb::error::Error) -> ApiError {
    let detail = format!(
        "mongo {op}: {}",
        runtime::redact::redact_text(&e.to_string())
    );
    match e.kind.as_ref() {
        ErrorKind::Command(c) if c.code != MAX_TIME_EXPIRED => ApiError::Internal(detail),
        _ => ApiError::Unavailable(detail),
    }
}

impl Reader {
    /// A reader on `sink`'s database, bounding every query by `timeout`.
    pub fn new(sink: MongoSink, timeout: Duration) -> Reader {
        Reader { sink, timeout }
    }

    /// Whether the server answers a `ping` in time.
    ///
    /// # Errors
    /// The failure, redacted.
    pub async fn ping(&self) -> Result<(), String> {
        self.sink
            .ping()
            .await
            .map_err(|e| runtime::redact::redact_text(&e.to_string()))
    }

    /// Runs `q` and collects its documents.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] on timeouts and connection failures, [`ApiError::Internal`]
    /// when the server refuses the query.
    pub async fn find(&self, q: Find<'_>) -> Result<Vec<Document>, ApiError> {
        let options = FindOptions::builder()
            .sort(q.sort)
            .limit(q.limit)
            .projection((!q.projection.is_empty()).then_some(q.projection))
            .max_time(self.timeout)
            .build();
        let coll = self.sink.collection(q.collection);
        let run = async {
            let cursor = coll.find(q.filter).with_options(options).await?;
            cursor.try_collect::<Vec<Document>>().await
        };
        self.bounded("find", run).await
    }

    /// Runs an aggregation pipeline (which must bound its own output) and collects it.
    ///
    /// # Errors
    /// As [`Reader::find`].
    pub async fn aggregate(
        &self,
        collection: &str,
        pipeline: Vec<Document>,
    ) -> Result<Vec<Document>, ApiError> {
        let options = AggregateOptions::builder().max_time(self.timeout).build();
        let coll = self.sink.collection(collection);
        let run = async {
            let cursor = coll.aggregate(pipeline).with_options(options).await?;
            cursor.try_collect::<Vec<Document>>().await
        };
        self.bounded("aggregate", run).await
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = mongodb::error::Result<T>>,
    ) -> Result<T, ApiError> {
        // The server stops at maxTimeMS; the client waits a little longer for that answer.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), fut).await {
            Ok(r) => r.map_err(|e| classify(op, &e)),
            Err(_) => Err(ApiError::Unavailable(format!(
                "mongo {op}: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}
