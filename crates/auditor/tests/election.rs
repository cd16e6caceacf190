//! Two `dm-auditor run` processes compete for the Lease on the in-process fake API server
//! (`leader::testing`, reached through `KUBECONFIG`), on real MariaDB and Mongo: only the
//! leader writes, a crashed leader is replaced by the other with a newer term and no duplicate
//! findings, and a graceful stop releases the Lease (issue 4; `docs/leader-election.md`).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leader::testing::FakeApi;
use mongodb::bson::{Bson, Document, doc};
use store::Timeframe;
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use support::election::{
    A, IS_LEADER, LD, LEASE, Replica, documents, ids, logs, stamps, temp_path,
};
use support::{current_hour, gap_id, hours_with_one_gap};
use testkit::eventually;
use tokio::time::Instant;

/// The Lease namespace (`POD_NAMESPACE`, and the kubeconfig's default).
const NS: &str = "dm-election-test";
/// Allowance for two processes, MariaDB and SecantusDB sharing a loaded 2-core box.
const SLACK: Duration = Duration::from_millis(1_500);
/// Bound for cold starts (process start, first election, first cycles) and for exits.
const SETTLE: Duration = Duration::from_secs(15);

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

/// (holder, term) of the stored Lease, holder `""` when released.
fn lease(fake: &FakeApi) -> Option<(String, i64)> {
    let spec = fake.lease(NS, LEASE)?.spec?;
    Some((
        spec.holder_identity.unwrap_or_default(),
        i64::from(spec.lease_transitions.unwrap_or(0)),
    ))
}

/// A fake API server and a kubeconfig pointing at it.
async fn fake_api() -> (FakeApi, PathBuf) {
    let fake = FakeApi::start().await;
    let kubeconfig = temp_path("", "kubeconfig", "yaml");
    fake.write_kubeconfig(&kubeconfig, NS)
        .expect("write kubeconfig");
    (fake, kubeconfig)
}

/// A replica of namespace [`NS`] on `db` and `mongo`.
fn replica(pod: &'static str, kubeconfig: &std::path::Path, db: &MariaDb, mongo: &str) -> Replica {
    Replica::start(pod, NS, kubeconfig, (&db.url, mongo), "")
}

/// The leader and the term of the first election, once the leader has written two cycles.
async fn wait_for_a_leader_with_two_cycles(fake: &FakeApi, mongo: &str) -> (String, i64) {
    eventually(SETTLE, || async {
        let (holder, term) = lease(fake)?;
        let health = stamps(mongo, "health_metrics").await;
        (!holder.is_empty() && health.len() >= 2).then_some((holder, term))
    })
    .await
}

/// The first term: only the leader audits and writes, under its term, the one gap finding.
/// Returns that finding's `first_seen`.
async fn assert_only_the_leader_writes(
    (leader, follower): (&Replica, &Replica),
    fake: &FakeApi,
    mongo: &str,
    (holder, term): (&str, i64),
    gap: &str,
) -> Option<Bson> {
    assert!(leader.is(holder), "holder {holder}");
    // Polled only until the follower's admin port answers; its gauge is never anything but 0.
    let follower_gauge = eventually(SETTLE, || follower.metric(IS_LEADER)).await;
    assert_eq!(follower_gauge, 0.0);
    assert_eq!(leader.metric(IS_LEADER).await, Some(1.0));
    assert_eq!(
        follower
            .metric("data_manager_audit_cycles_total{outcome=\"ok\"}")
            .await
            .unwrap_or(0.0),
        0.0,
        "the follower audits nothing"
    );
    assert_eq!(lease(fake).map(|l| l.1), Some(term), "no flapping");
    let health = stamps(mongo, "health_metrics").await;
    assert!(
        health.iter().all(|s| *s == (holder.to_owned(), term)),
        "only the leader writes, under its term: {health:?}\n{}",
        logs(&[leader, follower])
    );
    let findings = documents(mongo, "audit_logs").await;
    assert_eq!(ids(&findings), [gap]);
    assert_eq!(findings[0].get_str("leader_identity"), Ok(holder));
    assert_eq!(findings[0].get_i64("leader_term"), Ok(term));
    assert_eq!(findings[0].get_i64("missing_candles"), Ok(2));
    findings[0].get("first_seen").cloned()
}

/// SIGKILLs the leader (no release) and waits for the follower to take over after
/// LeaseDuration on its own clock: a newer term, no earlier than LD after the last renew, within
/// LD + 2 × A + SLACK of the kill. Returns the new holder and term.
async fn crash_the_leader_and_wait_for_the_takeover(
    (leader, follower): (&mut Replica, &Replica),
    fake: &FakeApi,
    (first_holder, term1): (&str, i64),
) -> (String, i64) {
    leader.process.0.kill().expect("SIGKILL the leader");
    let killed = Instant::now();
    let _ = leader.process.0.wait();
    let (second_holder, term2) = eventually(SETTLE, || async {
        let (holder, term) = lease(fake)?;
        follower.is(&holder).then_some((holder, term))
    })
    .await;
    assert!(
        term2 > term1,
        "a new leadership bumps the term: {term1} → {term2}"
    );
    let log = fake.log();
    let committed_by = |identity: &str| {
        log.iter()
            .filter(|e| {
                e.committed
                    .as_ref()
                    .and_then(|s| s.holder_identity.as_deref())
                    == Some(identity)
            })
            .map(|e| e.at)
            .collect::<Vec<_>>()
    };
    let last_renew = *committed_by(first_holder).last().expect("renews logged");
    let takeover = *committed_by(&second_holder)
        .first()
        .expect("takeover logged");
    assert!(
        takeover >= last_renew + LD,
        "taken over {:?} after the last renew, before LeaseDuration",
        takeover - last_renew
    );
    let failover = takeover.saturating_duration_since(killed);
    eprintln!("terms {term1} → {term2}, failover {failover:?} after SIGKILL");
    assert!(
        failover <= LD + 2 * A + SLACK,
        "failover took {failover:?}\n{}",
        logs(&[follower])
    );
    (second_holder, term2)
}

/// The new leader leads and writes under the newer term, over the same finding document (no
/// duplicate), and holds the fence.
async fn assert_the_new_leader_upserts_the_same_findings(
    follower: &Replica,
    mongo: &str,
    [(first_holder, term1), (second_holder, term2)]: [(&str, i64); 2],
    (gap, first_seen): (&str, Option<Bson>),
) {
    eventually(SETTLE, || async {
        (follower.metric(IS_LEADER).await? == 1.0).then_some(())
    })
    .await;
    let second = (second_holder.to_owned(), term2);
    eventually(SETTLE, || async {
        let health = stamps(mongo, "health_metrics").await;
        health.contains(&second).then_some(())
    })
    .await;
    let health = stamps(mongo, "health_metrics").await;
    assert!(
        health
            .iter()
            .all(|s| *s == (first_holder.to_owned(), term1) || *s == second),
        "{health:?}"
    );
    let findings = eventually(SETTLE, || async {
        let docs = documents(mongo, "audit_logs").await;
        docs.iter()
            .all(|d| d.get_i64("leader_term") == Ok(term2))
            .then_some(docs)
    })
    .await;
    assert_eq!(ids(&findings), [gap], "no duplicate from the new leader");
    assert_eq!(findings[0].get_str("leader_identity"), Ok(second_holder));
    assert_eq!(
        findings[0].get("first_seen").cloned(),
        first_seen,
        "the same document, upserted"
    );
    let fence = documents(mongo, "leader_fence").await;
    assert_eq!(fence.len(), 1);
    assert_eq!(fence[0].get("term"), Some(&Bson::Int64(term2)));
    assert_eq!(fence[0].get_str("holder"), Ok(second_holder));
}

/// Graceful stop: SIGTERM, the work stops, the Lease is released with its term kept, exit 0.
async fn stop_gracefully_and_assert_the_release(leader: &mut Replica, fake: &FakeApi, term: i64) {
    let status = leader.terminate(SETTLE).await;
    assert_eq!(status.code(), Some(0), "{}", logs(&[leader]));
    let released = fake
        .lease(NS, LEASE)
        .and_then(|l| l.spec)
        .expect("Lease kept");
    assert_eq!(released.holder_identity.as_deref().unwrap_or(""), "");
    assert_eq!(released.lease_duration_seconds, Some(1));
    assert_eq!(
        released.lease_transitions.map(i64::from),
        Some(term),
        "a release keeps the term"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_elect_one_writer_and_the_other_takes_over_a_crash_without_duplicates() {
    let db = MariaDb::create().await;
    let hour = current_hour();
    db.insert(h1(), "BTCUSDT", &hours_with_one_gap(hour)).await;
    let gap = gap_id(hour);
    let mongo = mongo_url();
    let (fake, kubeconfig) = fake_api().await;
    let mut a = replica("auditor-a", &kubeconfig, &db, &mongo);
    let mut b = replica("auditor-b", &kubeconfig, &db, &mongo);

    let (first_holder, term1) = wait_for_a_leader_with_two_cycles(&fake, &mongo).await;
    let (leader, follower) = if a.is(&first_holder) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let first = (first_holder.as_str(), term1);
    let first_seen =
        assert_only_the_leader_writes((&*leader, &*follower), &fake, &mongo, first, &gap).await;
    let (second_holder, term2) =
        crash_the_leader_and_wait_for_the_takeover((&mut *leader, &*follower), &fake, first).await;
    let second = (second_holder.as_str(), term2);
    assert_the_new_leader_upserts_the_same_findings(
        follower,
        &mongo,
        [first, second],
        (&gap, first_seen),
    )
    .await;
    stop_gracefully_and_assert_the_release(follower, &fake, term2).await;

    for path in [&kubeconfig, &a.log, &b.log] {
        let _ = std::fs::remove_file(path);
    }
    drop_mongo_database(&mongo).await;
}

/// A Lease that was deleted and re-created restarts its terms at 0, below the fence a previous
/// life of it left behind. The replica must not renew a Lease it cannot write under forever:
/// each fenced term steps down (counted in `data_manager_audit_fenced_total`), and the terms
/// climb until the fence admits them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_lease_below_the_fence_steps_down_until_its_term_catches_up() {
    let db = MariaDb::create().await;
    let hour = Utc::now().timestamp() / 3600 * 3600;
    let rows: Vec<_> = (3..10)
        .map(|h| {
            let open = DateTime::from_timestamp(hour - h * 3600, 0).expect("t");
            candle("BTCUSDT", h1(), open)
        })
        .collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let mongo = mongo_url();
    // The fence as an earlier life of the Lease left it, at term 3.
    mongodb::Client::with_uri_str(&mongo)
        .await
        .expect("client")
        .database(&store::mongo_url::database_name(&mongo))
        .collection::<Document>("leader_fence")
        .insert_one(doc! { "_id": LEASE, "term": 3_i64, "holder": "old-life" })
        .await
        .expect("seed the fence");
    let (fake, kubeconfig) = fake_api().await;
    let replica = replica("solo", &kubeconfig, &db, &mongo);

    let written = eventually(SETTLE, || async {
        let terms: Vec<i64> = stamps(&mongo, "health_metrics")
            .await
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        (!terms.is_empty()).then_some(terms)
    })
    .await;
    assert!(
        written.iter().all(|t| *t >= 3),
        "no write below the fence: {written:?}\n{}",
        logs(&[&replica])
    );
    let (holder, term) = lease(&fake).expect("lease");
    assert!(replica.is(&holder) && term >= 3, "{holder} {term}");
    let fenced = replica
        .metric("data_manager_audit_fenced_total")
        .await
        .expect("fenced counter");
    assert!(fenced >= 3.0, "terms 0, 1 and 2 were fenced: {fenced}");
    drop(replica);
    drop_mongo_database(&mongo).await;
}

/// The API server answers 503 for 2 × LeaseDuration: the leader's term ends, it withdraws its
/// per-dataset gauges (findings 0, score NaN) and stays up; once the server answers again it
/// leads under a newer term and writes, the findings once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_ends_the_term_withdraws_the_gauges_and_recovers() {
    const HIGH_GAPS: &str = r#"data_manager_audit_findings{check="gap",severity="high"}"#;
    const SCORE: &str = r#"data_manager_audit_health_score{symbol="BTCUSDT",timeframe="1h"}"#;
    let db = MariaDb::create().await;
    let hour = current_hour();
    db.insert(h1(), "BTCUSDT", &hours_with_one_gap(hour)).await;
    let mongo = mongo_url();
    let (fake, kubeconfig) = fake_api().await;
    let mut solo = replica("outage", &kubeconfig, &db, &mongo);

    let term = eventually(SETTLE, || async {
        let (holder, term) = lease(&fake)?;
        let gaps = solo.metric(HIGH_GAPS).await?;
        (solo.is(&holder) && gaps == 1.0).then_some(term)
    })
    .await;
    assert!(solo.metric(SCORE).await.is_some_and(|s| !s.is_nan()));

    fake.throttle(None, 503, 0);
    let outage = Instant::now();
    eventually(SETTLE, || async {
        let leading = solo.metric(IS_LEADER).await?;
        let gaps = solo.metric(HIGH_GAPS).await?;
        let score = solo.metric(SCORE).await?;
        (leading == 0.0 && gaps == 0.0 && score.is_nan()).then_some(())
    })
    .await;
    tokio::time::sleep((LD * 2).saturating_sub(outage.elapsed())).await;
    assert!(
        solo.process.0.try_wait().expect("wait").is_none(),
        "no exit during the outage\n{}",
        logs(&[&solo])
    );
    fake.clear_throttle(None);

    let newer = eventually(SETTLE, || async {
        let (holder, t) = lease(&fake)?;
        let written = stamps(&mongo, "health_metrics")
            .await
            .iter()
            .any(|(_, s)| *s == t);
        (solo.is(&holder) && t > term && written).then_some(t)
    })
    .await;
    assert_eq!(ids(&documents(&mongo, "audit_logs").await), [gap_id(hour)]);
    assert!(
        stamps(&mongo, "audit_logs")
            .await
            .iter()
            .all(|(_, t)| *t == newer || *t == term)
    );
    eventually(SETTLE, || async {
        (solo.metric(HIGH_GAPS).await? == 1.0).then_some(())
    })
    .await;
    drop(solo);
    drop_mongo_database(&mongo).await;
}
