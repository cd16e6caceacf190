//! `dm-auditor run` replicas elect through a real kube-apiserver (`make test-k8s` starts it),
//! each with a token of the chart's own scheduler ServiceAccount and Role, on real MariaDB and
//! Mongo: only the leader writes; after a SIGKILL the other takes over no earlier than
//! LeaseDuration after the last renew, with a newer term and no duplicate findings; after a
//! SIGTERM the Lease is released and a standby takes it over at once.
//!
//! Ignored in `make test`: it needs the server and the variables `tests/k8s/run.sh` exports.

#![allow(
    clippy::too_many_lines,
    reason = "each scenario is told from start to finish; splitting them into named steps is still to do"
)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use leader::testing::{LeaseWatch, RealApi};
use mongodb::bson::{Document, doc};
use store::Timeframe;
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use support::Auditor;
use testkit::{eventually, free_port, metric};
use tokio::time::Instant;

/// The auditor's Lease, which the chart's Role names.
const LEASE: &str = "data-manager-auditor";
const IS_LEADER: &str = "data_manager_leader_is_leader{lease=\"data-manager-auditor\"}";
/// Short election timings: LD 1 s, RD 600 ms, RP 200 ms.
const LD: Duration = Duration::from_secs(1);
/// The longest follower wait, 1.2 × RP.
const A: Duration = Duration::from_millis(240);
/// Allowance for three processes, etcd, kube-apiserver, MariaDB and SecantusDB on 2 cores.
const SLACK: Duration = Duration::from_millis(1_500);
/// Bound for cold starts and exits.
const SETTLE: Duration = Duration::from_secs(20);

fn temp_path(name: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dm-auditor-k8s-{name}-{}.{ext}",
        uuid::Uuid::new_v4().simple()
    ))
}

struct Replica {
    pod: &'static str,
    port: u16,
    log: PathBuf,
    process: Auditor,
}

impl Replica {
    fn start(pod: &'static str, ns: &str, kubeconfig: &Path, mysql: &str, mongo: &str) -> Replica {
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
                ("KUBECONFIG", kubeconfig.display().to_string()),
                ("POD_NAMESPACE", ns.into()),
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

    async fn metric(&self, series: &'static str) -> Option<f64> {
        let port = self.port;
        tokio::task::spawn_blocking(move || metric(port, series))
            .await
            .ok()
            .flatten()
    }

    fn is(&self, identity: &str) -> bool {
        identity
            .strip_prefix(self.pod)
            .is_some_and(|rest| rest.starts_with('_'))
    }

    fn log_text(&self) -> String {
        format!(
            "--- {} ---\n{}",
            self.pod,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// SIGTERM, then the exit status within `SETTLE`.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.process.0.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Some(status) = self.process.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// One version of the Lease as watched: when its event arrived, holder, term, and the
/// wall-clock stamps (microseconds) its writer put in: `acquireTime` and `renewTime`.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    at: Instant,
    holder: String,
    term: i64,
    acquired_us: i64,
    renewed_us: i64,
}

fn versions(watch: &LeaseWatch) -> Vec<Seen> {
    watch
        .versions()
        .into_iter()
        .map(|(at, spec)| Seen {
            at,
            holder: spec.holder_identity.unwrap_or_default(),
            term: i64::from(spec.lease_transitions.unwrap_or(0)),
            acquired_us: spec.acquire_time.map_or(0, |t| t.0.as_microsecond()),
            renewed_us: spec.renew_time.map_or(0, |t| t.0.as_microsecond()),
        })
        .collect()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real kube-apiserver of `make test-k8s`"]
async fn auditors_elect_through_a_real_api_server_with_the_charts_role() {
    let h1: Timeframe = "1h".parse().expect("1h");
    let db = MariaDb::create().await;
    let hour = Utc::now().timestamp() / 3600 * 3600;
    let open = |h: i64| DateTime::from_timestamp(hour - h * 3600, 0).expect("t");
    let rows: Vec<_> = (1..30)
        .filter(|h| ![10, 11].contains(h))
        .map(|h| candle("BTCUSDT", h1, open(h)))
        .collect();
    db.insert(h1, "BTCUSDT", &rows).await;
    let mongo = mongo_url();

    let real = RealApi::from_env();
    println!("kube-apiserver {}", real.version());
    let ns = real.create_namespace("dm-auditor").await;
    let (rbac, token) = real.chart_token(&ns).await;
    assert!(rbac.leases.iter().any(|l| l == LEASE), "{:?}", rbac.leases);
    let kubeconfig = temp_path("kubeconfig", "json");
    real.write_kubeconfig(&kubeconfig, &ns, &token)
        .expect("write kubeconfig");
    let seen = real.watch_lease(&ns, LEASE).await;

    let mut a = Replica::start("auditor-a", &ns, &kubeconfig, &db.url, &mongo);
    let mut b = Replica::start("auditor-b", &ns, &kubeconfig, &db.url, &mongo);
    let (first, term1) = eventually(SETTLE, || async {
        let last = versions(&seen).last().cloned()?;
        let health = stamps(&mongo, "health_metrics").await;
        (!last.holder.is_empty() && health.len() >= 2).then_some((last.holder, last.term))
    })
    .await;
    let (leader, follower) = if a.is(&first) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(leader.is(&first), "holder {first}");
    assert_eq!(eventually(SETTLE, || follower.metric(IS_LEADER)).await, 0.0);
    assert_eq!(leader.metric(IS_LEADER).await, Some(1.0));
    let health = stamps(&mongo, "health_metrics").await;
    assert!(
        health.iter().all(|s| *s == (first.clone(), term1)),
        "only the leader writes: {health:?}\n{}{}",
        leader.log_text(),
        follower.log_text()
    );

    // SIGKILL: no release. The other replica takes over LD after it last saw a renew.
    leader.process.0.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = leader.process.0.wait();
    let takeover = eventually(SETTLE, || async {
        versions(&seen).into_iter().find(|v| follower.is(&v.holder))
    })
    .await;
    let second = takeover.holder.clone();
    assert!(takeover.term > term1, "{term1} → {}", takeover.term);
    let failover = takeover.at.saturating_duration_since(killed);
    assert!(
        failover <= LD + 2 * A + SLACK,
        "failover took {failover:?}\n{}",
        follower.log_text()
    );
    let last_renew_us = versions(&seen)
        .iter()
        .filter(|v| v.holder == first)
        .map(|v| v.renewed_us)
        .max()
        .expect("renews seen");
    let gap_us = takeover.acquired_us - last_renew_us;
    assert!(
        gap_us >= i64::try_from(LD.as_micros()).unwrap_or(i64::MAX),
        "taken over {gap_us} µs after the last renew, before LeaseDuration"
    );
    eprintln!(
        "terms {term1} → {}, failover {failover:?} after SIGKILL",
        takeover.term
    );
    eventually(SETTLE, || async {
        stamps(&mongo, "health_metrics")
            .await
            .iter()
            .any(|s| *s == (second.clone(), takeover.term))
            .then_some(())
    })
    .await;
    let findings = eventually(SETTLE, || async {
        let docs = documents(&mongo, "audit_logs").await;
        (docs.len() == 1 && docs[0].get_i64("leader_term") == Ok(takeover.term)).then_some(docs)
    })
    .await;
    assert_eq!(findings[0].get_str("leader_identity"), Ok(second.as_str()));

    // SIGTERM with a standby: the work stops, the Lease is released, the standby takes over
    // at its next attempt instead of a LeaseDuration later.
    let mut c = Replica::start("auditor-c", &ns, &kubeconfig, &db.url, &mongo);
    eventually(SETTLE, || c.metric(IS_LEADER)).await;
    // The standby has observed the leader's renews.
    tokio::time::sleep(LD).await;
    let status = follower.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", follower.log_text());
    let released = eventually(SETTLE, || async {
        versions(&seen).into_iter().find(|v| v.holder.is_empty())
    })
    .await;
    assert_eq!(released.term, takeover.term, "a release keeps the term");
    let handed = eventually(SETTLE, || async {
        versions(&seen).into_iter().find(|v| c.is(&v.holder))
    })
    .await;
    assert!(handed.term > takeover.term);
    let handover = handed.at.saturating_duration_since(released.at);
    assert!(
        handover <= A + SLACK,
        "hand-over took {handover:?}\n{}",
        c.log_text()
    );
    eprintln!("hand-over {handover:?} after the release");

    let status = c.terminate().await;
    assert_eq!(status.code(), Some(0), "{}", c.log_text());
    let last = eventually(SETTLE, || async {
        real.lease(&ns, LEASE)
            .await
            .and_then(|l| l.spec)
            .filter(|s| s.holder_identity.as_deref() == Some(""))
    })
    .await;
    assert_eq!(last.lease_duration_seconds, Some(1));

    for path in [&kubeconfig, &a.log, &b.log, &c.log] {
        let _ = std::fs::remove_file(path);
    }
    drop_mongo_database(&mongo).await;
}

/// A replica whose token no Role names: the election is reported as misconfigured, with the
/// server's 403, in readiness (503) and in the gauge, instead of following nobody forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real kube-apiserver of `make test-k8s`"]
async fn an_auditor_without_a_role_is_not_ready_and_says_why() {
    let db = MariaDb::create().await;
    let mongo = mongo_url();
    let real = RealApi::from_env();
    let ns = real.create_namespace("dm-auditor-norole").await;
    let kubeconfig = temp_path("kubeconfig-norole", "json");
    real.write_kubeconfig(&kubeconfig, &ns, real.norole_token())
        .expect("write kubeconfig");
    let replica = Replica::start("auditor-x", &ns, &kubeconfig, &db.url, &mongo);
    let port = replica.port;
    let (code, body) = eventually(SETTLE, || async move {
        let (code, body) =
            tokio::task::spawn_blocking(move || testkit::http_get(port, "/health/readiness"))
                .await
                .ok()??;
        body.contains("misconfigured").then_some((code, body))
    })
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("403 Forbidden") && body.contains("dm-norole"),
        "{body}"
    );
    assert_eq!(
        replica
            .metric("data_manager_leader_misconfigured{lease=\"data-manager-auditor\"}")
            .await,
        Some(1.0),
        "{}",
        replica.log_text()
    );
    let log = replica.log_text();
    assert!(
        log.contains("ERROR") && log.contains("leader election is misconfigured"),
        "{log}"
    );
    drop(replica);
    let _ = std::fs::remove_file(&kubeconfig);
    drop_mongo_database(&mongo).await;
}
