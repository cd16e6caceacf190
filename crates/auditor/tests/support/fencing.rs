//! The fenced-write tests' shared setup (klines datasets in `fencing.rs`, trades datasets in
//! `trades.rs`): a sink, the terms the documents were written under, and a stale term that a
//! newer one overtakes in the middle of its write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};
use store::sink::Deadline;
use store::{Batching, Fence, MongoSink};

/// The auditor's Lease, which names its fence.
pub const LEASE: &str = "data-manager-auditor";

/// A sink on `url` with the application name `app`.
pub async fn sink(url: &str, app: &str) -> MongoSink {
    MongoSink::connect(url, app, Duration::from_secs(10))
        .await
        .expect("connect")
}

/// (symbol, leader_term) of every document of `coll`, sorted.
pub async fn terms(s: &MongoSink, coll: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let mut cursor = s.collection(coll).find(doc! {}).await.expect("find");
    while cursor.advance().await.expect("next") {
        let d: Document = cursor.deserialize_current().expect("doc");
        out.push((
            d.get_str("symbol").unwrap_or("").to_owned(),
            d.get_i64("leader_term").unwrap_or(-1),
        ));
    }
    out.sort();
    out
}

/// Claims the fence for `term` at `now` from another thread with its own runtime and client
/// (application name `app`), as another replica would, while the caller is inside a write.
fn claim_elsewhere(url: String, app: &'static str, term: i64, now: DateTime<Utc>) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                sink(&url, app)
                    .await
                    .claim_fence(&Fence::new(LEASE, term, "newer"), now)
                    .await
                    .expect("the newer term claims the fence");
            });
    })
    .join()
    .expect("claim thread");
}

/// How many times a stale write consults its deadline before it stops at the second round's
/// claim: a round's transaction consults it when it starts, before each command and before
/// its commit, so with one statement per command the first round (start, claim, the first
/// finding, the first health document, commit) is five, and the second round's start and
/// claim are the sixth and seventh.
pub const CONSULTATIONS_UNTIL_THE_SECOND_CLAIM: usize = 7;

/// Term 4's fence, whose deadline term 5 overtakes between two rounds: at the sixth
/// consultation (the second round's start, before its claim) term 5 claims the fence (at
/// `claimed_at`, through a client named `app`). A claim during a round would wait for its
/// transaction. Also returns the count of consultations.
pub fn stale_fence_overtaken_at_the_second_round(
    url: &str,
    app: &'static str,
    claimed_at: DateTime<Utc>,
) -> (Fence, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let deadline = {
        let (calls, url) = (calls.clone(), url.to_owned());
        Deadline::from_fn(move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 5 {
                claim_elsewhere(url.clone(), app, 5, claimed_at);
            }
            Some(tokio::time::Instant::now() + Duration::from_secs(60))
        })
    };
    let stale = Fence {
        deadline,
        ..Fence::new(LEASE, 4, "stale")
    };
    (stale, calls)
}

/// Batching of one statement per command, so that a round is one command per collection.
pub fn one_statement_per_command() -> Batching {
    Batching {
        max_statements: 1,
        ..Batching::default()
    }
}

/// A fence for term 4 whose deadline has already passed.
pub fn expired_fence() -> Fence {
    Fence {
        deadline: Deadline::at(tokio::time::Instant::now()),
        ..Fence::new(LEASE, 4, "frozen")
    }
}
