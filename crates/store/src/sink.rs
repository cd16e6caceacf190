//! The MongoDB sink: one client, indexes at startup, and writes fenced by the leader term and
//! bounded by the leader's write deadline.
//!
//! Every write is an `update` command whose statements each match
//! `{_id: key, leader_term: {$lte: term}}`, and every document carries `leader_term`: a key a
//! newer term wrote is never overwritten (the upsert finds no match, tries to insert the same
//! `_id` again and the server answers E11000, reported as [`SinkError::Fenced`]); documents new
//! to the collection may go out as `insert`s, which never overwrite ([`FencedWrite::Insert`]).
//! A batched write goes out in rounds, each one transaction that first re-claims the fence
//! document (`leader_fence`, one per Lease): a stale leader's round lands before a newer
//! term's first write or not at all, and it stops once a newer term has claimed the fence. And no
//! operation starts after the [`Fence`]'s deadline, each carrying `maxTimeMS` = the time left, so none can land
//! after another replica may have taken over. `docs/fencing.md` argues why this is enough.
//! All of it is behaviour real MongoDB and the test server share.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Client, ClientSession, Collection, Database, IndexModel};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{Batching, Chunk, FencedWrite, Outcome, chunk};
use crate::transaction::{RoundChunk, TxRound};

use crate::bson_safe::{date, sanitize};
use crate::mongo_url::database_name;

/// The collection of fence documents, one per Lease.
pub const FENCE_COLLECTION: &str = "leader_fence";

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11_000;

/// How long past an operation's server-side limit the client still waits for the answer (the
/// server's `MaxTimeMSExpired` reply travelling back), before giving up on it.
const REPLY_GRACE: Duration = Duration::from_millis(500);

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
    /// The write deadline has passed (or the writer no longer leads): nothing was sent.
    #[error("mongo: {op} not sent: the leader's write deadline has passed")]
    DeadlinePassed {
        /// What was to be done.
        op: &'static str,
    },
    /// The call did not finish in time.
    #[error("mongo: {op} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The server refused a statement of a write (other than a fenced key).
    #[error("mongo: {op} failed: code {code}: {message}")]
    Write {
        /// What was being done.
        op: &'static str,
        /// The server's error code (50: `maxTimeMS` expired).
        code: i32,
        /// The server's message.
        message: String,
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

    /// Whether this term may not write any more (fenced, or past its write deadline): stop the
    /// cycle and keep nothing to replay under this term.
    pub fn ends_term(&self) -> bool {
        matches!(
            self,
            SinkError::Fenced { .. } | SinkError::DeadlinePassed { .. }
        )
    }
}

/// Until when a writer may write: the leader's `valid_until`, read live before every operation
/// (it moves forward with every renew). [`Deadline::none`] for writers no Lease bounds
/// (`dm-auditor once`, `LEADER_ELECTION=disabled`).
#[derive(Clone, Default)]
pub struct Deadline(Option<Arc<dyn Fn() -> Option<Instant> + Send + Sync>>);

impl Deadline {
    /// No deadline.
    pub fn none() -> Deadline {
        Deadline(None)
    }

    /// The deadline `valid_until` reports; `None` from it means "not leading": refuse.
    pub fn from_fn(valid_until: impl Fn() -> Option<Instant> + Send + Sync + 'static) -> Deadline {
        Deadline(Some(Arc::new(valid_until)))
    }

    /// A fixed instant (tests).
    pub fn at(t: Instant) -> Deadline {
        Deadline::from_fn(move || Some(t))
    }

    /// The time left at `now`: `Ok(None)` without a deadline.
    ///
    /// # Errors
    /// `Err(())` once the deadline has passed, or when the writer no longer leads.
    #[allow(clippy::result_unit_err)]
    pub fn remaining(&self, now: Instant) -> Result<Option<Duration>, ()> {
        match &self.0 {
            None => Ok(None),
            Some(f) => match f() {
                Some(t) if t > now => Ok(Some(t - now)),
                _ => Err(()),
            },
        }
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Deadline(none)"),
            Some(v) => write!(f, "Deadline({:?})", v()),
        }
    }
}

/// The term a writer holds: stamped on every document and checked by every keyed upsert.
#[derive(Debug, Clone)]
pub struct Fence {
    /// The Lease name (`data-manager-auditor`): the fence document's `_id`.
    pub lease: String,
    /// The leader term.
    pub term: i64,
    /// The leader's identity.
    pub holder: String,
    /// No write is sent after it.
    pub deadline: Deadline,
}

impl Fence {
    /// A fence without a deadline (no Lease bounds the writer).
    pub fn new(lease: impl Into<String>, term: i64, holder: impl Into<String>) -> Fence {
        Fence {
            lease: lease.into(),
            term,
            holder: holder.into(),
            deadline: Deadline::none(),
        }
    }
}

/// How a batched write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batched {
    /// Every statement was sent; one outcome per stream, in the order given.
    Done(Vec<Outcome>),
    /// Stopped between two rounds (the term ended or shutdown began).
    Stopped,
}

/// One statement of an `update` command.
struct Statement {
    filter: Document,
    update: Document,
    upsert: bool,
    multi: bool,
}

/// The MongoDB database results go to.
#[derive(Debug, Clone)]
pub struct MongoSink {
    pub(crate) client: Client,
    db: Database,
    pub(crate) timeout: Duration,
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
        Self::connect_with(url, app_name, timeout, |_| {}).await
    }

    /// [`MongoSink::connect`], with `configure` applied to the driver's options last (e.g. a
    /// command monitor in a test).
    ///
    /// # Errors
    /// [`SinkError::Url`] when the URL does not parse (or an SRV lookup fails).
    pub async fn connect_with(
        url: &str,
        app_name: &str,
        timeout: Duration,
        configure: impl FnOnce(&mut ClientOptions),
    ) -> Result<MongoSink, SinkError> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| SinkError::Url(runtime::redact::redact_text(&e.to_string())))?;
        options.app_name = Some(app_name.to_owned());
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        configure(&mut options);
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

    pub(crate) async fn bounded<T, F>(&self, op: &'static str, fut: F) -> Result<T, SinkError>
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

    /// Creates the TTL index `name` on the date `field` of `collection`, or, when it exists
    /// with another lifetime, changes its lifetime in place (`collMod`): the setting can be
    /// changed without dropping anything.
    ///
    /// # Errors
    /// [`SinkError`] when the server refuses.
    pub async fn ensure_ttl_index(
        &self,
        collection: &str,
        name: &str,
        field: &str,
        expire_after: Duration,
    ) -> Result<(), SinkError> {
        let model = IndexModel::builder()
            .keys(doc! { field: 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .name(name.to_owned())
                    .expire_after(expire_after)
                    .build(),
            )
            .build();
        let created = self
            .bounded(
                "create_indexes",
                self.collection(collection).create_index(model),
            )
            .await;
        match created {
            Err(SinkError::Driver { source, .. }) if is_index_conflict(&source) => {
                let seconds = i64::try_from(expire_after.as_secs()).unwrap_or(i64::MAX);
                let command = doc! {
                    "collMod": collection,
                    "index": { "name": name, "expireAfterSeconds": seconds },
                };
                self.bounded("collMod", self.db.run_command(command))
                    .await
                    .map(|_| ())
            }
            other => other.map(|_| ()),
        }
    }

    /// The `_id`s of the documents of `collection` matching `filter` (a read; no fence).
    ///
    /// # Errors
    /// [`SinkError`] when the query fails.
    pub async fn ids(
        &self,
        collection: &str,
        filter: Document,
    ) -> Result<std::collections::HashSet<String>, SinkError> {
        use futures::TryStreamExt;
        let find = async {
            let cursor = self
                .collection(collection)
                .find(filter)
                .projection(doc! { "_id": 1 })
                .await?;
            cursor.try_collect::<Vec<Document>>().await
        };
        let docs = self.bounded("ids", find).await?;
        Ok(docs
            .iter()
            .filter_map(|d| d.get_str("_id").ok().map(str::to_owned))
            .collect())
    }

    /// Claims the fence document for `fence.term` (see `docs/fencing.md`): succeeds when no newer term
    /// claimed it. [`MongoSink::write_batched`] claims it inside each round's transaction.
    ///
    /// # Errors
    /// [`SinkError::Fenced`] when a newer term holds the fence; other [`SinkError`]s on failure.
    pub async fn claim_fence(&self, fence: &Fence, now: DateTime<Utc>) -> Result<(), SinkError> {
        self.claim_fence_in(fence, now, None).await
    }

    /// [`MongoSink::claim_fence`], inside `session`'s transaction when one is given.
    pub(crate) async fn claim_fence_in(
        &self,
        fence: &Fence,
        now: DateTime<Utc>,
        session: Option<&mut ClientSession>,
    ) -> Result<(), SinkError> {
        let statement = Statement {
            filter: doc! { "_id": &fence.lease, "term": { "$lte": fence.term } },
            update: doc! {
                "$set": { "term": fence.term, "holder": &fence.holder, "updated_at": date(now) },
                "$currentDate": { "written_at": true },
            },
            upsert: true,
            multi: false,
        };
        self.update(
            "claim_fence",
            FENCE_COLLECTION,
            &fence.lease,
            fence,
            vec![statement],
            session,
        )
        .await
        .map(|_| ())
    }

    /// Upserts the document `_id: key` in `collection` under `fence`: `set` is applied on
    /// every write (with `leader_term`, `leader_identity` and the server's `written_at` added),
    /// `set_on_insert` only when the document is created. Numbers are made BSON-safe at every
    /// depth.
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
        let mut update = doc! {
            "$set": sanitize(set),
            "$currentDate": { "written_at": true },
        };
        if !set_on_insert.is_empty() {
            update.insert("$setOnInsert", sanitize(set_on_insert));
        }
        let statement = Statement {
            filter: doc! { "_id": key, "leader_term": { "$lte": fence.term } },
            update,
            upsert: true,
            multi: false,
        };
        self.update("upsert", collection, key, fence, vec![statement], None)
            .await
            .map(|_| ())
    }

    /// `update_many(filter ∧ leader_term ≤ term, {$set: set})`, for bookkeeping over documents
    /// an older or equal term wrote (e.g. marking findings resolved); the documents it changes
    /// take our term. Returns the count changed.
    ///
    /// # Errors
    /// [`SinkError`] on failure.
    pub async fn update_many_fenced(
        &self,
        collection: &str,
        mut filter: Document,
        fence: &Fence,
        mut set: Document,
    ) -> Result<u64, SinkError> {
        filter.insert("leader_term", doc! { "$lte": fence.term });
        set.insert("leader_term", fence.term);
        set.insert("leader_identity", &fence.holder);
        let statement = Statement {
            filter,
            update: doc! { "$set": sanitize(set), "$currentDate": { "written_at": true } },
            upsert: false,
            multi: true,
        };
        self.update("update_many", collection, "*", fence, vec![statement], None)
            .await
    }

    /// Runs one ordered `update` command of `statements` under `fence`'s deadline. Returns the
    /// number of documents modified.
    async fn update(
        &self,
        op: &'static str,
        collection: &str,
        key: &str,
        fence: &Fence,
        statements: Vec<Statement>,
        session: Option<&mut ClientSession>,
    ) -> Result<u64, SinkError> {
        let updates: Vec<Bson> = statements
            .into_iter()
            .map(|s| {
                Bson::Document(doc! {
                    "q": s.filter, "u": s.update, "upsert": s.upsert, "multi": s.multi,
                })
            })
            .collect();
        let command = doc! { "update": collection, "updates": updates, "ordered": true };
        let reply = self.send_write(op, fence, command, session).await?;
        write_result(op, collection, key, fence.term, &reply)
    }

    /// Sends one write `command` under `fence`'s deadline, inside `session`'s transaction
    /// when one is given: refused before sending when the deadline has passed. Outside a
    /// transaction the command carries `maxTimeMS` = the time left (or the call timeout,
    /// whichever is shorter) and the client waits no longer than that. Inside one, nothing it
    /// does lands unless the commit does, and the commit is refused once the deadline has
    /// passed, so the command may take up to the call timeout: a slow server still makes
    /// progress while the leader keeps renewing. Returns the server's reply.
    pub(crate) async fn send_write(
        &self,
        op: &'static str,
        fence: &Fence,
        mut command: Document,
        session: Option<&mut ClientSession>,
    ) -> Result<Document, SinkError> {
        let left = fence
            .deadline
            .remaining(Instant::now())
            .map_err(|()| SinkError::DeadlinePassed { op })?;
        let server_limit = left.map_or(self.timeout, |l| l.min(self.timeout));
        let mut client_limit = left.map_or(self.timeout, |_| server_limit + REPLY_GRACE);
        let sent = match session {
            Some(session) => {
                client_limit = self.timeout;
                let run = self.db.run_command(command).session(session);
                tokio::time::timeout(client_limit, run.into_future()).await
            }
            None => {
                let max_time_ms = i64::try_from(server_limit.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1);
                command.insert("maxTimeMS", max_time_ms);
                let run = self.db.run_command(command);
                tokio::time::timeout(client_limit, run.into_future()).await
            }
        };
        match sent {
            Ok(r) => r.map_err(|source| SinkError::Driver { op, source }),
            Err(_) => Err(SinkError::Timeout {
                op,
                after: client_limit,
            }),
        }
    }

    /// Sends one chunk outside a transaction as an unordered `update` (or `insert`) command
    /// under `fence`'s deadline. A statement a newer term fenced is reported in
    /// [`Outcome::fenced`], not as a failed command; any other statement error fails it.
    /// Returns, for an `insert`, the fenced upserts of the documents whose key already existed
    /// (to send next).
    async fn send_chunk(
        &self,
        collection: &str,
        fence: &Fence,
        chunk: Chunk,
    ) -> Result<(Outcome, Vec<FencedWrite>), SinkError> {
        let (op, command) = chunk_command(collection, &chunk);
        let reply = self.send_write(op, fence, command, None).await?;
        let mut outcome = chunk_outcome(&reply, &chunk.keys)?;
        if !chunk.is_insert() {
            return Ok((outcome, Vec::new()));
        }
        // An insert's E11000 means the key exists: not fenced, to be re-sent fenced.
        let existing: std::collections::HashSet<String> = outcome.fenced.drain(..).collect();
        outcome.succeeded = (chunk.keys.len() - existing.len()) as u64;
        let again = chunk
            .keys
            .iter()
            .zip(chunk.fallback)
            .filter(|(k, _)| existing.contains(k.as_str()))
            .map(|(_, w)| w)
            .collect();
        Ok((outcome, again))
    }

    /// Writes `streams` (per collection, in order) as a few unordered `update` (and `insert`)
    /// commands, in rounds of the next chunk of up to `batching.concurrency` collections.
    /// Each round is one transaction that first re-claims the fence: it lands whole or not at
    /// all (`transaction.rs` says why that makes fencing independent of timing). An insert
    /// chunk that finds an existing key is sent again as fenced upserts. Stops before a round
    /// once `stop` is cancelled ([`Batched::Stopped`]).
    ///
    /// A server without transactions (a standalone `mongod`) gets the same rounds without
    /// one: the claim, then the round's chunks in parallel; a fenced statement is reported
    /// while the rest of its command lands, and the writer stops after that round.
    ///
    /// # Errors
    /// [`SinkError::Fenced`] when a newer term claimed the fence or wrote a key (the first one
    /// is named), [`SinkError::DeadlinePassed`], or the failure of a command.
    pub async fn write_batched(
        &self,
        fence: &Fence,
        now: DateTime<Utc>,
        streams: &[(&str, Vec<FencedWrite>)],
        batching: Batching,
        stop: &CancellationToken,
    ) -> Result<Batched, SinkError> {
        let b = batching.clamped();
        let mut queues: Vec<(&str, VecDeque<Chunk>)> = streams
            .iter()
            .map(|(c, w)| (*c, chunk(w, fence.term, &fence.holder, b).into()))
            .collect();
        let mut outcomes = vec![Outcome::default(); streams.len()];
        loop {
            let round = next_round(&mut queues, b.concurrency);
            if round.is_empty() {
                return Ok(Batched::Done(outcomes));
            }
            if stop.is_cancelled() {
                return Ok(Batched::Stopped);
            }
            let landed = match self.round_in_transaction(fence, now, &round, stop).await? {
                TxRound::Committed(landed) => landed
                    .into_iter()
                    .map(|(i, c, o)| (i, c, o, Vec::new()))
                    .collect(),
                TxRound::InsertFoundKey(position) => {
                    requeue(&mut queues, round, position, fence, b);
                    continue;
                }
                TxRound::Unsupported => {
                    warn_no_transactions();
                    self.round_without_transaction(fence, now, round).await?
                }
            };
            let mut fenced = None;
            for (i, collection, o, again) in landed {
                if let Some(key) = o.fenced.first() {
                    fenced.get_or_insert((collection.to_owned(), key.clone()));
                }
                outcomes[i].add(o);
                // Keys an insert found existing go next, as fenced upserts.
                let retry = chunk(&again, fence.term, &fence.holder, b);
                for c in retry.into_iter().rev() {
                    queues[i].1.push_front(c);
                }
            }
            if let Some((collection, key)) = fenced {
                return Err(SinkError::Fenced {
                    collection,
                    key,
                    term: fence.term,
                });
            }
        }
    }

    /// A round on a server without transactions: the fence claim, then every chunk at once.
    /// Returns each chunk's outcome and the upserts its inserts still owe.
    async fn round_without_transaction<'a>(
        &self,
        fence: &Fence,
        now: DateTime<Utc>,
        round: Vec<RoundChunk<'a>>,
    ) -> Result<Vec<(usize, &'a str, Outcome, Vec<FencedWrite>)>, SinkError> {
        self.claim_fence(fence, now).await?;
        let sent = round
            .into_iter()
            .map(|(i, c, ch)| async move { (i, c, self.send_chunk(c, fence, ch).await) });
        let mut landed = Vec::new();
        for (i, collection, result) in futures::future::join_all(sent).await {
            let (o, again) = result?;
            landed.push((i, collection, o, again));
        }
        Ok(landed)
    }

    /// Closes the client's connections.
    pub async fn shutdown(self) {
        self.client.shutdown().await;
    }
}

/// The next round: the next chunk of each stream that has one, at most `concurrency` of them.
fn next_round<'a>(
    queues: &mut [(&'a str, VecDeque<Chunk>)],
    concurrency: usize,
) -> Vec<RoundChunk<'a>> {
    queues
        .iter_mut()
        .enumerate()
        .filter_map(|(i, (c, q))| q.pop_front().map(|ch| (i, *c, ch)))
        .take(concurrency)
        .collect()
}

/// Puts an aborted round back at the front of its streams, the insert chunk at `position`
/// replaced by the fenced upserts of its documents.
fn requeue(
    queues: &mut [(&str, VecDeque<Chunk>)],
    round: Vec<RoundChunk<'_>>,
    position: usize,
    fence: &Fence,
    b: Batching,
) {
    for (n, (i, _, ch)) in round.into_iter().enumerate().rev() {
        let again = if n == position {
            chunk(&ch.fallback, fence.term, &fence.holder, b)
        } else {
            vec![ch]
        };
        for c in again.into_iter().rev() {
            queues[i].1.push_front(c);
        }
    }
}

/// Says once per process that the server has no transactions, so rounds are fenced by their
/// claim alone (`docs/fencing.md` names what that leaves open).
fn warn_no_transactions() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            "the MongoDB server has no transactions (a standalone server?): each round of \
             writes is fenced by its claim alone, without a transaction (see docs/fencing.md)"
        );
    });
}

/// The command that sends `chunk` to `collection`: an unordered `insert` (every document's
/// `written_at` the time of sending) or an unordered `update`.
pub(crate) fn chunk_command(collection: &str, chunk: &Chunk) -> (&'static str, Document) {
    if !chunk.is_insert() {
        let updates = chunk.statements.clone();
        let command = doc! { "update": collection, "updates": updates, "ordered": false };
        return ("batch update", command);
    }
    let sent_at = Bson::DateTime(mongodb::bson::DateTime::now());
    let mut documents = chunk.statements.clone();
    for d in documents.iter_mut().filter_map(|b| b.as_document_mut()) {
        d.insert("written_at", sent_at.clone());
    }
    let command = doc! { "insert": collection, "documents": documents, "ordered": false };
    ("batch insert", command)
}

/// Whether the server refused an index because one with the same name or keys but other
/// options exists (IndexOptionsConflict, IndexKeySpecsConflict).
fn is_index_conflict(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if c.code == 85 || c.code == 86)
}

/// Reads an unordered `update` reply: per-statement duplicate-key errors are fenced keys
/// (mapped back through `keys` by index); any other statement error fails the command.
pub(crate) fn chunk_outcome(reply: &Document, keys: &[String]) -> Result<Outcome, SinkError> {
    let op = "batch update";
    let mut fenced = Vec::new();
    let errors = reply
        .get_array("writeErrors")
        .map_or(&[][..], Vec::as_slice);
    for e in errors.iter().filter_map(Bson::as_document) {
        let code = e.get("code").map_or(0, int);
        if code != DUPLICATE_KEY {
            return Err(SinkError::Write {
                op,
                code,
                message: e.get_str("errmsg").unwrap_or("").to_owned(),
            });
        }
        let index = e.get("index").map_or(-1, int);
        let key = usize::try_from(index)
            .ok()
            .and_then(|i| keys.get(i))
            .map_or("?", String::as_str);
        fenced.push(key.to_owned());
    }
    if let Ok(e) = reply.get_document("writeConcernError") {
        return Err(SinkError::Write {
            op,
            code: e.get("code").map_or(0, int),
            message: e.get_str("errmsg").unwrap_or("").to_owned(),
        });
    }
    let count = |f: &str| u64::try_from(reply.get(f).map_or(0, int)).unwrap_or(0);
    Ok(Outcome {
        succeeded: (keys.len() - errors.len().min(keys.len())) as u64,
        matched: count("n"),
        modified: count("nModified"),
        fenced,
    })
}

/// A BSON number as `i32` (0 when it is not one).
fn int(b: &Bson) -> i32 {
    match b {
        Bson::Int32(c) => *c,
        Bson::Int64(c) => i32::try_from(*c).unwrap_or(i32::MAX),
        Bson::Double(c) => *c as i32,
        _ => 0,
    }
}

/// Reads an `update` reply: the first write error (E11000 is [`SinkError::Fenced`]), a write
/// concern error, or the number of documents modified.
fn write_result(
    op: &'static str,
    collection: &str,
    key: &str,
    term: i64,
    reply: &Document,
) -> Result<u64, SinkError> {
    let first_error = reply
        .get_array("writeErrors")
        .ok()
        .and_then(|errors| errors.first())
        .and_then(Bson::as_document)
        .or_else(|| reply.get_document("writeConcernError").ok());
    if let Some(e) = first_error {
        let code = match e.get("code") {
            Some(Bson::Int32(c)) => *c,
            Some(Bson::Int64(c)) => i32::try_from(*c).unwrap_or(i32::MAX),
            Some(Bson::Double(c)) => *c as i32,
            _ => 0,
        };
        if code == DUPLICATE_KEY {
            return Err(SinkError::Fenced {
                collection: collection.to_owned(),
                key: key.to_owned(),
                term,
            });
        }
        return Err(SinkError::Write {
            op,
            code,
            message: e.get_str("errmsg").unwrap_or("").to_owned(),
        });
    }
    let modified = match reply.get("nModified") {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Double(n)) => *n as u64,
        _ => 0,
    };
    Ok(modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_write_errors_are_fenced_and_others_are_write_errors() {
        let dup = doc! { "n": 0, "writeErrors": [ { "index": 0, "code": 11000, "errmsg": "E11000" } ], "ok": 1.0 };
        assert!(
            write_result("upsert", "c", "k", 3, &dup)
                .expect_err("dup")
                .is_fenced()
        );
        let slow = doc! { "n": 0, "writeErrors": [ { "index": 0, "code": 50, "errmsg": "operation exceeded time limit" } ], "ok": 1.0 };
        assert!(matches!(
            write_result("upsert", "c", "k", 3, &slow),
            Err(SinkError::Write { code: 50, .. })
        ));
        let ok = doc! { "n": 2, "nModified": 2_i32, "ok": 1.0 };
        assert_eq!(write_result("upsert", "c", "k", 3, &ok).expect("ok"), 2);
    }

    #[test]
    fn a_passed_or_absent_deadline_refuses_and_none_is_unbounded() {
        let now = Instant::now();
        assert_eq!(Deadline::none().remaining(now), Ok(None));
        let later = now + Duration::from_secs(2);
        assert_eq!(
            Deadline::at(later).remaining(now),
            Ok(Some(Duration::from_secs(2)))
        );
        assert_eq!(Deadline::at(now).remaining(now), Err(()));
        assert_eq!(Deadline::from_fn(|| None).remaining(now), Err(()));
    }
}
