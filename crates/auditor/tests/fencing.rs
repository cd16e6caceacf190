//! Fencing without windows, on a real Mongo-compatible server: a stale term stops at its next
//! batch once a newer term has claimed the fence, writes nothing after its deadline, and stops
//! between writes when its term ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mongodb::bson::{Document, doc};
use store::sink::Deadline;
use store::testing::{at, drop_mongo_database, mongo_url};
use store::{Fence, MongoSink, SinkError};
use tokio_util::sync::CancellationToken;

use auditor::dataset::{DatasetReport, Params, Status};
use auditor::score::Profile;
use auditor::write::{WriteError, write_reports, write_reports_with};
use store::Batching;

const LEASE: &str = "data-manager-auditor";

fn report(symbol: &str) -> DatasetReport {
    let p = Params {
        now: at(2025, 10, 22, 0, 30, 0),
        window: 86_400,
        timeframe: "1h".parse().expect("tf"),
        tolerance: 60,
        max_lag: 7_200,
        profile: Profile::V3,
        max_row_findings: 100,
    };
    DatasetReport::informational(symbol, p, Status::TableMissing)
}

async fn sink(url: &str) -> MongoSink {
    MongoSink::connect(url, "fencing-test", Duration::from_secs(10))
        .await
        .expect("connect")
}

async fn terms(s: &MongoSink, coll: &str) -> Vec<(String, i64)> {
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

/// Claims the fence for `term` from another thread with its own runtime and client, as another
/// replica would, while the caller is inside a write.
fn claim_elsewhere(url: String, term: i64) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async move {
                let other = sink(&url).await;
                other
                    .claim_fence(
                        &Fence::new(LEASE, term, "newer"),
                        at(2025, 10, 22, 0, 31, 0),
                    )
                    .await
                    .expect("the newer term claims the fence");
            });
    })
    .join()
    .expect("claim thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_term_stops_at_its_next_batch_once_a_newer_term_claimed_the_fence() {
    let url = mongo_url();
    let s = sink(&url).await;
    // A round's transaction consults the deadline when it starts, before each command and
    // before its commit. With one statement per command, the first round is five (start,
    // claim, the first finding, the first health document, commit); at the sixth (the next
    // round's start, before its claim), term 5 claims the fence.
    let calls = Arc::new(AtomicUsize::new(0));
    let deadline = {
        let (calls, url) = (calls.clone(), url.clone());
        Deadline::from_fn(move || {
            if calls.fetch_add(1, Ordering::SeqCst) == 5 {
                claim_elsewhere(url.clone(), 5);
            }
            Some(tokio::time::Instant::now() + Duration::from_secs(60))
        })
    };
    let stale = Fence {
        deadline,
        ..Fence::new(LEASE, 4, "stale")
    };
    let reports = [report("AAAUSDT"), report("BBBUSDT")];
    let one_each = Batching {
        max_statements: 1,
        ..Batching::default()
    };
    let err = write_reports_with(
        &s,
        &stale,
        &reports,
        "run",
        at(2025, 10, 22, 0, 30, 0),
        &CancellationToken::new(),
        one_each,
    )
    .await
    .expect_err("fenced at the second batch");
    assert!(
        matches!(&err, WriteError::Sink(e) if e.is_fenced()),
        "{err}"
    );
    // The first round landed before the newer claim; nothing of the second did, although
    // term 5 never wrote its keys.
    assert_eq!(terms(&s, "audit_logs").await, [("AAAUSDT".into(), 4)]);
    assert_eq!(terms(&s, "health_metrics").await, [("AAAUSDT".into(), 4)]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        7,
        "the second round stopped at its claim"
    );
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn past_the_deadline_or_after_the_term_ended_nothing_is_written() {
    let url = mongo_url();
    let s = sink(&url).await;
    let now = at(2025, 10, 22, 0, 30, 0);
    let reports = [report("AAAUSDT")];
    let expired = Fence {
        deadline: Deadline::at(tokio::time::Instant::now()),
        ..Fence::new(LEASE, 4, "frozen")
    };
    let err = write_reports(
        &s,
        &expired,
        &reports,
        "run",
        now,
        &CancellationToken::new(),
    )
    .await
    .expect_err("deadline passed");
    assert!(
        matches!(err, WriteError::Sink(SinkError::DeadlinePassed { .. })),
        "{err}"
    );
    let ended = CancellationToken::new();
    ended.cancel();
    let err = write_reports(&s, &Fence::new(LEASE, 4, "x"), &reports, "run", now, &ended)
        .await
        .expect_err("term ended");
    assert!(matches!(err, WriteError::Stopped), "{err}");
    assert!(terms(&s, "audit_logs").await.is_empty());
    assert!(terms(&s, "leader_fence").await.is_empty());
    drop_mongo_database(&url).await;
}
