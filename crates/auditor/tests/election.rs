//! Two `dm-auditor run` processes compete for the Lease on the in-process fake API server
//! (`leader::testing`, reached through `KUBECONFIG`), on real MariaDB and Mongo: only the
//! leader writes, a crashed leader is replaced by the other with a newer term and no duplicate
//! findings, and a graceful stop releases the Lease (issue 4; `docs/leader-election.md`).

#![allow(
    clippy::too_many_lines,
    reason = "each scenario is told from start to finish; splitting them into named steps is still to do"
)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use leader::testing::FakeApi;
use mongodb::bson::{Bson, Document, doc};
use store::Timeframe;
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use support::Auditor;
use testkit::{eventually, free_port, metric};
use tokio::time::Instant;

/// The Lease namespace (`POD_NAMESPACE`, and the kubeconfig's default).
const NS: &str = "dm-election-test";
/// The auditor's Lease.
const LEASE: &str = "data-manager-auditor";
/// The leader gauge of the `leader` crate, as exposed on `/metrics`.
const IS_LEADER: &str = "data_manager_leader_is_leader{lease=\"data-manager-auditor\"}";
/// Short election timings so a failover fits in a test: LeaseDuration (LD) 1 s, RenewDeadline
/// (RD) 600 ms, RetryPeriod (RP) 200 ms.
const LD: Duration = Duration::from_secs(1);
/// The longest follower wait, 1.2 × RP.
const A: Duration = Duration::from_millis(240);
/// Allowance for two processes, MariaDB and SecantusDB sharing a loaded 2-core box.
const SLACK: Duration = Duration::from_millis(1_500);
/// Bound for cold starts (process start, first election, first cycles) and for exits.
const SETTLE: Duration = Duration::from_secs(15);

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn temp_path(name: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dm-auditor-{name}-{}.{ext}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// One `dm-auditor run` replica: its process, admin port, pod name and log file.
struct Replica {
    pod: &'static str,
    port: u16,
    log: PathBuf,
    process: Auditor,
}

impl Replica {
    fn start(pod: &'static str, kubeconfig: &Path, mysql: &str, mongo: &str) -> Replica {
        let port = free_port();
        let log = temp_path(pod, "log");
        let process = Auditor::start(
            &["run"],
            &[
                ("MYSQL_URI", mysql.to_owned()),
                ("MONGODB_URL", mongo.to_owned()),
                ("SUPPORTED_PAIRS", "BTCUSDT".into()),
                ("AUDIT_TIMEFRAMES", "1h".into()),
                // Klines only: the trades datasets have their own tests (tests/trades.rs).
                ("AUDIT_TRADES", "false".into()),
                ("AUDIT_INTERVAL", "1s".into()),
                ("AUDIT_RETRY_MIN", "200ms".into()),
                ("PROBE_INTERVAL", "200ms".into()),
                ("DB_TIMEOUT", "2s".into()),
                ("SHUTDOWN_GRACE", "5s".into()),
                // The environment is cleared, so no HTTPS_PROXY reaches kube's kubeconfig loader.
                ("KUBECONFIG", kubeconfig.display().to_string()),
                ("POD_NAMESPACE", NS.into()),
                ("POD_NAME", pod.into()),
                ("LEASE_DURATION", "1s".into()),
                ("LEASE_RENEW_DEADLINE", "600ms".into()),
                ("LEASE_RETRY_PERIOD", "200ms".into()),
                ("METRICS_PORT", port.to_string()),
                ("METRICS_HOST", "127.0.0.1".into()),
                ("LOG_FORMAT", "text".into()),
            ],
            &log,
        );
        Replica {
            pod,
            port,
            log,
            process,
        }
    }

    /// `/metrics`' value of `series`, read off the runtime's threads (the fake serves on them).
    async fn metric(&self, series: &'static str) -> Option<f64> {
        let port = self.port;
        tokio::task::spawn_blocking(move || metric(port, series))
            .await
            .ok()
            .flatten()
    }

    /// Whether a Lease holder identity (`<POD_NAME>_<suffix>`) is this replica's.
    fn is(&self, identity: &str) -> bool {
        identity
            .strip_prefix(self.pod)
            .is_some_and(|rest| rest.starts_with('_'))
    }
}

/// Both replicas' logs, for failure messages.
fn logs(replicas: &[&Replica]) -> String {
    replicas
        .iter()
        .map(|r| {
            format!(
                "--- {} ---\n{}",
                r.pod,
                std::fs::read_to_string(&r.log).unwrap_or_default()
            )
        })
        .collect()
}

/// (holder, term) of the stored Lease, holder `""` when released.
fn lease(fake: &FakeApi) -> Option<(String, i64)> {
    let spec = fake.lease(NS, LEASE)?.spec?;
    Some((
        spec.holder_identity.unwrap_or_default(),
        i64::from(spec.lease_transitions.unwrap_or(0)),
    ))
}

async fn documents(url: &str, coll: &str) -> Vec<Document> {
    let client = mongodb::Client::with_uri_str(url).await.expect("client");
    client
        .database(&store::mongo_url::database_name(url))
        .collection::<Document>(coll)
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("documents")
}

/// The (leader_identity, leader_term) of every document of `coll`.
async fn stamps(url: &str, coll: &str) -> Vec<(String, i64)> {
    documents(url, coll)
        .await
        .iter()
        .map(|d| {
            (
                d.get_str("leader_identity").unwrap_or("").to_owned(),
                d.get_i64("leader_term").unwrap_or(-1),
            )
        })
        .collect()
}

fn ids(docs: &[Document]) -> Vec<String> {
    let mut ids: Vec<String> = docs
        .iter()
        .map(|d| d.get_str("_id").unwrap_or("").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_elect_one_writer_and_the_other_takes_over_a_crash_without_duplicates() {
    // 29 closed hourly candles up to the current hour, minus two: one gap finding. The newest
    // due slot lags the clock by the 1h timeframe's 2 h allowance, so an hour boundary crossed
    // during the test changes no finding.
    let db = MariaDb::create().await;
    let hour = Utc::now().timestamp() / 3600 * 3600;
    let open = |h: i64| DateTime::from_timestamp(hour - h * 3600, 0).expect("t");
    let rows: Vec<_> = (1..30)
        .filter(|h| ![10, 11].contains(h))
        .map(|h| candle("BTCUSDT", h1(), open(h)))
        .collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let gap_id = format!(
        "BTCUSDT|1h|gap|{}",
        open(11).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mongo = mongo_url();

    let fake = FakeApi::start().await;
    let kubeconfig = temp_path("kubeconfig", "yaml");
    fake.write_kubeconfig(&kubeconfig, NS)
        .expect("write kubeconfig");
    let mut a = Replica::start("auditor-a", &kubeconfig, &db.url, &mongo);
    let mut b = Replica::start("auditor-b", &kubeconfig, &db.url, &mongo);

    // One leader, which has written two cycles.
    let (first_holder, term1) = eventually(SETTLE, || async {
        let (holder, term) = lease(&fake)?;
        let health = stamps(&mongo, "health_metrics").await;
        (!holder.is_empty() && health.len() >= 2).then_some((holder, term))
    })
    .await;
    let (leader, follower) = if a.is(&first_holder) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(leader.is(&first_holder), "holder {first_holder}");
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
    assert_eq!(lease(&fake).map(|l| l.1), Some(term1), "no flapping");
    let health = stamps(&mongo, "health_metrics").await;
    assert!(
        health.iter().all(|s| *s == (first_holder.clone(), term1)),
        "only the leader writes, under its term: {health:?}\n{}",
        logs(&[leader, follower])
    );
    let findings = documents(&mongo, "audit_logs").await;
    assert_eq!(ids(&findings), std::slice::from_ref(&gap_id));
    assert_eq!(
        findings[0].get_str("leader_identity"),
        Ok(first_holder.as_str())
    );
    assert_eq!(findings[0].get_i64("leader_term"), Ok(term1));
    assert_eq!(findings[0].get_i64("missing_candles"), Ok(2));
    let first_seen = findings[0].get("first_seen").cloned();

    // Crash: SIGKILL, no release. The follower takes over after LD on its own clock.
    leader.process.0.kill().expect("SIGKILL the leader");
    let killed = Instant::now();
    let _ = leader.process.0.wait();
    let (second_holder, term2) = eventually(SETTLE, || async {
        let (holder, term) = lease(&fake)?;
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
    let last_renew = *committed_by(&first_holder).last().expect("renews logged");
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
    eventually(SETTLE, || async {
        (follower.metric(IS_LEADER).await? == 1.0).then_some(())
    })
    .await;

    // The new leader writes under the newer term, over the same findings.
    eventually(SETTLE, || async {
        let health = stamps(&mongo, "health_metrics").await;
        health
            .iter()
            .any(|s| *s == (second_holder.clone(), term2))
            .then_some(())
    })
    .await;
    let health = stamps(&mongo, "health_metrics").await;
    assert!(
        health
            .iter()
            .all(|s| *s == (first_holder.clone(), term1) || *s == (second_holder.clone(), term2)),
        "{health:?}"
    );
    let findings = eventually(SETTLE, || async {
        let docs = documents(&mongo, "audit_logs").await;
        docs.iter()
            .all(|d| d.get_i64("leader_term") == Ok(term2))
            .then_some(docs)
    })
    .await;
    assert_eq!(ids(&findings), [gap_id], "no duplicate from the new leader");
    assert_eq!(
        findings[0].get_str("leader_identity"),
        Ok(second_holder.as_str())
    );
    assert_eq!(
        findings[0].get("first_seen").cloned(),
        first_seen,
        "the same document, upserted"
    );
    let fence = documents(&mongo, "leader_fence").await;
    assert_eq!(fence.len(), 1);
    assert_eq!(fence[0].get("term"), Some(&Bson::Int64(term2)));
    assert_eq!(fence[0].get_str("holder"), Ok(second_holder.as_str()));

    // Graceful stop: SIGTERM, the work stops, the Lease is released, exit 0.
    let pid = follower.process.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(sent.success());
    let deadline = Instant::now() + SETTLE;
    let status = loop {
        if let Some(status) = follower.process.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after SIGTERM\n{}",
            logs(&[follower])
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(status.code(), Some(0), "{}", logs(&[follower]));
    let released = fake
        .lease(NS, LEASE)
        .and_then(|l| l.spec)
        .expect("Lease kept");
    assert_eq!(released.holder_identity.as_deref().unwrap_or(""), "");
    assert_eq!(released.lease_duration_seconds, Some(1));
    assert_eq!(
        released.lease_transitions.map(i64::from),
        Some(term2),
        "a release keeps the term"
    );

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
    let fake = FakeApi::start().await;
    let kubeconfig = temp_path("kubeconfig", "yaml");
    fake.write_kubeconfig(&kubeconfig, NS).expect("kubeconfig");
    let replica = Replica::start("solo", &kubeconfig, &db.url, &mongo);

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
    let hour = Utc::now().timestamp() / 3600 * 3600;
    let open = |h: i64| DateTime::from_timestamp(hour - h * 3600, 0).expect("t");
    let rows: Vec<_> = (1..30)
        .filter(|h| ![10, 11].contains(h))
        .map(|h| candle("BTCUSDT", h1(), open(h)))
        .collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let mongo = mongo_url();
    let fake = FakeApi::start().await;
    let kubeconfig = temp_path("kubeconfig", "yaml");
    fake.write_kubeconfig(&kubeconfig, NS).expect("kubeconfig");
    let mut solo = Replica::start("outage", &kubeconfig, &db.url, &mongo);

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
    let gap_id = format!(
        "BTCUSDT|1h|gap|{}",
        open(11).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(ids(&documents(&mongo, "audit_logs").await), [gap_id]);
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
