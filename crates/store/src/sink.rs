//! The MongoDB sink: one client, indexes at startup, and upserts fenced by the leader term.
//!
//! Fencing (`leader.md` §9): every write carries `leader_term`. A keyed upsert matches only a
//! document written by the same or an older term (or by nobody); if a newer term already wrote
//! the key, the filter matches nothing, the upsert tries to insert the same `_id` again and the
//! server answers E11000, which we report as [`SinkError::Fenced`]. The fence document
//! (`leader_fence`, one per Lease) is claimed the same way at the start of every cycle, so a
//! stale leader stops before its first write. This relies only on behaviour that real MongoDB
//! and the test server share: conditional upserts and unique `_id`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database, IndexModel};

use crate::bson_safe::{date, sanitize};
use crate::mongo_url::database_name;

/// The collection of fence documents, one per Lease.
pub const FENCE_COLLECTION: &str = "leader_fence";

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11_000;

/// A failed write or probe. Messages never contain the URL's password.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// `MONGODB_URL` does not parse.
    #[error("MONGODB_URL: {0}")]
    Url(String),
    /// A newer leader term already wrote this key or claimed the fence.
    #[error("mongo: fenced: a term newer than {term} wrote {collection}/{key}")]
    Fenced {
        /// The collection.
        collection: String,
        /// The document key.
        key: String,
        /// Our (stale) term.
        term: i64,
    },
    /// The call did not finish in time.
    #[error("mongo: {op} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The server failed the operation or could not be reached.
    #[error("mongo: {op} failed: {source}")]
    Driver {
        /// What was being done.
        op: &'static str,
        /// The driver error.
        #[source]
        source: mongodb::error::Error,
    },
}

impl SinkError {
    /// Whether a newer term fenced us off: stop the cycle, do not retry under this term.
    pub fn is_fenced(&self) -> bool {
        matches!(self, SinkError::Fenced { .. })
    }
}

/// The term a writer holds: stamped on every document and checked by every keyed upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The Lease name (`data-manager-auditor`): the fence document's `_id`.
    pub lease: String,
    /// The leader term.
    pub term: i64,
    /// The leader's identity.
    pub holder: String,
}

/// The MongoDB database results go to.
#[derive(Debug, Clone)]
pub struct MongoSink {
    client: Client,
    db: Database,
    timeout: Duration,
}

fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => Some(we.code),
        ErrorKind::Command(ce) => Some(ce.code),
        _ => None,
    }
}

impl MongoSink {
    /// A client for `url` (database from its path, `petrosa_data_manager` by default). The
    /// driver connects in the background: a server that is down is a failed write later, not
    /// an error here. `timeout` bounds server selection and every call.
    ///
    /// # Errors
    /// [`SinkError::Url`] when the URL does not parse (or an SRV lookup fails).
    pub async fn connect(
        url: &str,
        app_name: &str,
        timeout: Duration,
    ) -> Result<MongoSink, SinkError> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| SinkError::Url(runtime::redact::redact_text(&e.to_string())))?;
        options.app_name = Some(app_name.to_owned());
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        let client = Client::with_options(options)
            .map_err(|e| SinkError::Url(runtime::redact::redact_text(&e.to_string())))?;
        let db = client.database(&database_name(url));
        Ok(MongoSink {
            client,
            db,
            timeout,
        })
    }

    /// The database name.
    pub fn database_name(&self) -> &str {
        self.db.name()
    }

    /// A collection of the database.
    pub fn collection(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    async fn bounded<T, F>(&self, op: &'static str, fut: F) -> Result<T, SinkError>
    where
        F: IntoFuture<Output = mongodb::error::Result<T>>,
    {
        match tokio::time::timeout(self.timeout, fut.into_future()).await {
            Ok(r) => r.map_err(|source| SinkError::Driver { op, source }),
            Err(_) => Err(SinkError::Timeout {
                op,
                after: self.timeout,
            }),
        }
    }

    /// `ping`: whether the server answers.
    ///
    /// # Errors
    /// When it does not, within the timeout.
    pub async fn ping(&self) -> Result<(), SinkError> {
        self.bounded("ping", self.db.run_command(doc! { "ping": 1 }))
            .await
            .map(|_| ())
    }

    /// Creates `indexes` on `collection` (a no-op for those that exist).
    ///
    /// # Errors
    /// [`SinkError`] when the server refuses.
    pub async fn ensure_indexes(
        &self,
        collection: &str,
        indexes: Vec<IndexModel>,
    ) -> Result<(), SinkError> {
        self.bounded(
            "create_indexes",
            self.collection(collection).create_indexes(indexes),
        )
        .await
        .map(|_| ())
    }

    /// Claims the fence document for `fence.term` (`leader.md` §9): succeeds when no newer term
    /// claimed it. Call it at the start of every cycle.
    ///
    /// # Errors
    /// [`SinkError::Fenced`] when a newer term holds the fence; other [`SinkError`]s on failure.
    pub async fn claim_fence(&self, fence: &Fence, now: DateTime<Utc>) -> Result<(), SinkError> {
        let filter = doc! { "_id": &fence.lease, "term": { "$lte": fence.term } };
        let update = doc! { "$set": {
            "term": fence.term,
            "holder": &fence.holder,
            "updated_at": date(now),
        }};
        let coll = self.collection(FENCE_COLLECTION);
        self.fenced_result(
            self.bounded("claim_fence", coll.update_one(filter, update).upsert(true))
                .await,
            FENCE_COLLECTION,
            &fence.lease,
            fence.term,
        )
    }

    fn fenced_result<T>(
        &self,
        r: Result<T, SinkError>,
        collection: &str,
        key: &str,
        term: i64,
    ) -> Result<(), SinkError> {
        match r {
            Ok(_) => Ok(()),
            Err(SinkError::Driver { source, .. }) if error_code(&source) == Some(DUPLICATE_KEY) => {
                Err(SinkError::Fenced {
                    collection: collection.to_owned(),
                    key: key.to_owned(),
                    term,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Upserts the document `_id: key` in `collection` under `fence`: `set` is applied on
    /// every write (with `leader_term` and `leader_identity` added), `set_on_insert` only when
    /// the document is created. Numbers are made BSON-safe at every depth.
    ///
    /// # Errors
    /// [`SinkError::Fenced`] when a newer term already wrote the key; other [`SinkError`]s.
    pub async fn upsert_fenced(
        &self,
        collection: &str,
        key: &str,
        fence: &Fence,
        mut set: Document,
        set_on_insert: Document,
    ) -> Result<(), SinkError> {
        set.insert("leader_term", fence.term);
        set.insert("leader_identity", &fence.holder);
        let filter = doc! {
            "_id": key,
            "$or": [
                { "leader_term": { "$lte": fence.term } },
                { "leader_term": { "$exists": false } },
            ],
        };
        let mut update = doc! { "$set": sanitize(set) };
        if !set_on_insert.is_empty() {
            update.insert("$setOnInsert", sanitize(set_on_insert));
        }
        let coll = self.collection(collection);
        self.fenced_result(
            self.bounded("upsert", coll.update_one(filter, update).upsert(true))
                .await,
            collection,
            key,
            fence.term,
        )
    }

    /// `update_many(filter ∧ leader_term ≤ term, {$set: set})`, for bookkeeping over documents
    /// an older or equal term wrote (e.g. marking findings resolved). Returns the count changed.
    ///
    /// # Errors
    /// [`SinkError`] on failure.
    pub async fn update_many_fenced(
        &self,
        collection: &str,
        mut filter: Document,
        fence: &Fence,
        set: Document,
    ) -> Result<u64, SinkError> {
        filter.insert("leader_term", doc! { "$lte": fence.term });
        let update = doc! { "$set": sanitize(set) };
        let coll = self.collection(collection);
        self.bounded("update_many", coll.update_many(filter, update))
            .await
            .map(|r| r.modified_count)
    }

    /// Closes the client's connections.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }
}
