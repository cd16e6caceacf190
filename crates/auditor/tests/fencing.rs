//! Fencing without windows, on a real Mongo-compatible server: a stale term stops at its next
//! batch once a newer term has claimed the fence, writes nothing after its deadline, and stops
//! between writes when its term ends.

mod support;

use store::testing::{at, drop_mongo_database, mongo_url};
use store::{Fence, SinkError};
use support::fencing::{
    CONSULTATIONS_UNTIL_THE_SECOND_CLAIM, LEASE, expired_fence, one_statement_per_command, sink,
    stale_fence_overtaken_at_the_second_round, terms,
};
use tokio_util::sync::CancellationToken;

use auditor::dataset::{DatasetReport, Params, Status};
use auditor::score::Profile;
use auditor::write::{WriteError, write_reports, write_reports_with};

/// The sink's application name, also the competing replica's.
const APP: &str = "fencing-test";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_term_stops_at_its_next_batch_once_a_newer_term_claimed_the_fence() {
    let url = mongo_url();
    let s = sink(&url, APP).await;
    // Term 5 claims the fence between term 4's first and second rounds.
    let (stale, calls) =
        stale_fence_overtaken_at_the_second_round(&url, APP, at(2025, 10, 22, 0, 31, 0));
    let reports = [report("AAAUSDT"), report("BBBUSDT")];
    let err = write_reports_with(
        &s,
        &stale,
        &reports,
        "run",
        at(2025, 10, 22, 0, 30, 0),
        &CancellationToken::new(),
        one_statement_per_command(),
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
        calls.load(std::sync::atomic::Ordering::SeqCst),
        CONSULTATIONS_UNTIL_THE_SECOND_CLAIM
    );
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn past_the_deadline_or_after_the_term_ended_nothing_is_written() {
    let url = mongo_url();
    let s = sink(&url, APP).await;
    let now = at(2025, 10, 22, 0, 30, 0);
    let reports = [report("AAAUSDT")];
    let expired = expired_fence();
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
