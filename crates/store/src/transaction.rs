//! One round of a batched write as one MongoDB transaction: the fence claim and every chunk of
//! the round commit together, or nothing of the round lands.
//!
//! This is what makes fencing independent of timing. The claim writes the fence document, so
//! a newer term's claim and this round's cannot both commit in an order that interleaves
//! with the writes: if the newer claim committed first, this round's claim conflicts
//! (WriteConflict) or finds the newer term (E11000) and the round is aborted; if this round's
//! claim came first, the newer claim conflicts until this round has committed or aborted, and
//! the newer term writes nothing before its own claim commits. So every write of a stale term
//! lands before the newer term's first write, or never, however long the stale writer was
//! paused or its commands delayed (`docs/fencing.md`).
//!
//! A round that conflicts with another writer's open transaction is retried with backoff
//! (a frozen writer's transaction ends when it resumes and aborts, or when the server's
//! transaction lifetime limit expires). A server without transactions (a standalone
//! `mongod`) gets the same rounds without the transaction, as `write_batched` describes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::ClientSession;
use mongodb::error::TRANSIENT_TRANSACTION_ERROR;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{Chunk, Outcome};
use crate::sink::{Fence, MongoSink, SinkError, chunk_command, chunk_outcome};

/// The first pause before a round that conflicted is tried again; it doubles up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);

/// The longest pause between two tries of a round.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// How long an abort may take before the session is dropped (the server aborts it anyway).
const ABORT_LIMIT: Duration = Duration::from_secs(2);

/// A chunk of a round: (stream index, collection, statements).
pub(crate) type RoundChunk<'a> = (usize, &'a str, Chunk);

/// How a transactional round ended, when no newer term fenced it.
#[derive(Debug)]
pub(crate) enum TxRound<'a> {
    /// Committed: one outcome per chunk, with its stream index and collection.
    Committed(Vec<(usize, &'a str, Outcome)>),
    /// The insert chunk at this position of the round found a key that exists: the server
    /// aborted the transaction, nothing of the round landed, and the round is to be sent
    /// again with that chunk as fenced upserts.
    InsertFoundKey(usize),
    /// The server has no transactions: nothing was sent.
    Unsupported,
}

impl MongoSink {
    /// Sends `round` as one transaction: claim the fence, send each chunk, commit. Retries
    /// while another writer's open transaction conflicts with it, until the call timeout,
    /// the fence's deadline or `stop`.
    ///
    /// # Errors
    /// [`SinkError::Fenced`] (a newer term claimed the fence or wrote a key: nothing of the
    /// round landed), [`SinkError::DeadlinePassed`] (the round was aborted), or the failure.
    pub(crate) async fn round_in_transaction<'a>(
        &self,
        fence: &Fence,
        now: DateTime<Utc>,
        round: &[RoundChunk<'a>],
        stop: &CancellationToken,
    ) -> Result<TxRound<'a>, SinkError> {
        let give_up = Instant::now() + self.timeout;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.one_transaction(fence, now, round).await {
                Err(e) if is_conflict(&e) && Instant::now() + pause < give_up => {
                    if stop.is_cancelled() {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                other => return other,
            }
        }
    }

    /// One try: a session, a transaction, the round, then commit (or abort on any failure).
    async fn one_transaction<'a>(
        &self,
        fence: &Fence,
        now: DateTime<Utc>,
        round: &[RoundChunk<'a>],
    ) -> Result<TxRound<'a>, SinkError> {
        let op = "start_transaction";
        let mut session = self.bounded(op, self.client.start_session()).await?;
        fence
            .deadline
            .remaining(Instant::now())
            .map_err(|()| SinkError::DeadlinePassed { op })?;
        let started = session
            .start_transaction()
            .max_commit_time(self.timeout)
            .await;
        match started {
            Ok(()) => {}
            Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Transaction { .. }) => {
                return Ok(TxRound::Unsupported);
            }
            Err(source) => return Err(SinkError::Driver { op, source }),
        }
        match self.round_body(&mut session, fence, now, round).await {
            Ok(TxRound::Committed(landed)) => {
                self.commit(&mut session, fence).await?;
                Ok(TxRound::Committed(landed))
            }
            other => {
                abort(&mut session).await;
                other
            }
        }
    }

    /// Inside the transaction: the fence claim, then each chunk in order. Stops at the first
    /// chunk the server refused (the transaction is then void).
    async fn round_body<'a>(
        &self,
        session: &mut ClientSession,
        fence: &Fence,
        now: DateTime<Utc>,
        round: &[RoundChunk<'a>],
    ) -> Result<TxRound<'a>, SinkError> {
        self.claim_fence_in(fence, now, Some(&mut *session)).await?;
        let mut landed = Vec::with_capacity(round.len());
        for (position, (stream, collection, chunk)) in round.iter().enumerate() {
            let (op, command) = chunk_command(collection, chunk);
            let reply = self
                .send_write(op, fence, command, Some(&mut *session))
                .await?;
            let outcome = chunk_outcome(&reply, &chunk.keys)?;
            match outcome.fenced.first() {
                None => landed.push((*stream, *collection, outcome)),
                Some(_) if chunk.is_insert() => return Ok(TxRound::InsertFoundKey(position)),
                Some(key) => {
                    return Err(SinkError::Fenced {
                        collection: (*collection).to_owned(),
                        key: key.clone(),
                        term: fence.term,
                    });
                }
            }
        }
        Ok(TxRound::Committed(landed))
    }

    /// Commits, unless the fence's deadline has passed (then aborts: the term is over). The
    /// commit may take up to the call timeout: when it lands no longer matters for the order,
    /// which the fence claim inside the transaction settles.
    async fn commit(&self, session: &mut ClientSession, fence: &Fence) -> Result<(), SinkError> {
        let op = "commit";
        if fence.deadline.remaining(Instant::now()).is_err() {
            abort(session).await;
            return Err(SinkError::DeadlinePassed { op });
        }
        let limit = self.timeout;
        match tokio::time::timeout(limit, session.commit_transaction()).await {
            Ok(r) => r.map_err(|source| SinkError::Driver { op, source }),
            Err(_) => Err(SinkError::Timeout { op, after: limit }),
        }
    }
}

/// Aborts the transaction, best effort: the server also aborts it when the session ends or
/// its lifetime limit passes.
async fn abort(session: &mut ClientSession) {
    let _ = tokio::time::timeout(ABORT_LIMIT, session.abort_transaction()).await;
}

/// Whether another writer's transaction conflicted with ours (try again later).
fn is_conflict(e: &SinkError) -> bool {
    matches!(e, SinkError::Driver { source, .. } if source.contains_label(TRANSIENT_TRANSACTION_ERROR))
}
