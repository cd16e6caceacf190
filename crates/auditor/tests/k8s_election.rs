//! `dm-auditor run` replicas elect through a real kube-apiserver (`make test-k8s` starts it),
//! each with a token of the chart's own scheduler ServiceAccount and Role, on real MariaDB and
//! Mongo: only the leader writes; after a SIGKILL the other takes over no earlier than
//! LeaseDuration after the last renew, with a newer term and no duplicate findings; after a
//! SIGTERM the Lease is released and a standby takes it over at once.
//!
//! Ignored in `make test`: it needs the server and the variables `tests/k8s/run.sh` exports.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use leader::testing::{LeaseWatch, RealApi};
use store::Timeframe;
use store::testing::{MariaDb, drop_mongo_database, mongo_url};
use support::election::{A, IS_LEADER, LD, LEASE, Replica, documents, stamps, temp_path};
use support::{current_hour, hours_with_one_gap};
use testkit::eventually;
use tokio::time::Instant;

/// Allowance for three processes, etcd, kube-apiserver, MariaDB and SecantusDB on 2 cores.
const SLACK: Duration = Duration::from_millis(1_500);
/// Bound for cold starts and exits.
const SETTLE: Duration = Duration::from_secs(20);

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

/// What the replicas of one namespace share: the server, the namespace, a kubeconfig with the
/// chart's token, and the databases.
struct Cluster<'a> {
    real: &'a RealApi,
    ns: String,
    kubeconfig: PathBuf,
    mysql: String,
    mongo: String,
}

impl Cluster<'_> {
    fn replica(&self, pod: &'static str) -> Replica {
        replica(pod, &self.ns, &self.kubeconfig, (&self.mysql, &self.mongo))
    }
}

fn replica(pod: &'static str, ns: &str, kubeconfig: &Path, dbs: (&str, &str)) -> Replica {
    Replica::start(pod, ns, kubeconfig, dbs, "k8s-")
}

/// A namespace with the chart's RBAC, whose Role names the auditor's Lease, and a kubeconfig
/// with its token.
async fn chart_namespace(real: &RealApi) -> (String, PathBuf) {
    let ns = real.create_namespace("dm-auditor").await;
    let (rbac, token) = real.chart_token(&ns).await;
    assert!(rbac.leases.iter().any(|l| l == LEASE), "{:?}", rbac.leases);
    let kubeconfig = temp_path("k8s-", "kubeconfig", "json");
    real.write_kubeconfig(&kubeconfig, &ns, &token)
        .expect("write kubeconfig");
    (ns, kubeconfig)
}

/// One leader, which has written two cycles, and a follower; only the leader writes. Returns
/// (leader, follower) and the leader's (holder, term).
async fn wait_for_one_writing_leader<'r>(
    [a, b]: [&'r mut Replica; 2],
    seen: &LeaseWatch,
    mongo: &str,
) -> ((&'r mut Replica, &'r mut Replica), (String, i64)) {
    let (first, term1) = eventually(SETTLE, || async {
        let last = versions(seen).last().cloned()?;
        let health = stamps(mongo, "health_metrics").await;
        (!last.holder.is_empty() && health.len() >= 2).then_some((last.holder, last.term))
    })
    .await;
    let (leader, follower) = if a.is(&first) { (a, b) } else { (b, a) };
    assert!(leader.is(&first), "holder {first}");
    assert_eq!(eventually(SETTLE, || follower.metric(IS_LEADER)).await, 0.0);
    assert_eq!(leader.metric(IS_LEADER).await, Some(1.0));
    let health = stamps(mongo, "health_metrics").await;
    assert!(
        health.iter().all(|s| *s == (first.clone(), term1)),
        "only the leader writes: {health:?}\n{}{}",
        leader.log_text(),
        follower.log_text()
    );
    ((leader, follower), (first, term1))
}

/// SIGKILL: no release. The other replica takes over LD after it last saw a renew, within
/// LD + 2 × A + SLACK of the kill, under a newer term. Returns the takeover's Lease version.
async fn crash_the_leader_and_wait_for_the_takeover(
    (leader, follower): (&mut Replica, &Replica),
    seen: &LeaseWatch,
    (first, term1): (&str, i64),
) -> Seen {
    leader.process.0.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = leader.process.0.wait();
    let takeover = eventually(SETTLE, || async {
        versions(seen).into_iter().find(|v| follower.is(&v.holder))
    })
    .await;
    assert!(takeover.term > term1, "{term1} → {}", takeover.term);
    let failover = takeover.at.saturating_duration_since(killed);
    assert!(
        failover <= LD + 2 * A + SLACK,
        "failover took {failover:?}\n{}",
        follower.log_text()
    );
    let last_renew_us = versions(seen)
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
    takeover
}

/// The new leader writes under its term, over the one finding.
async fn wait_for_the_new_leaders_writes(mongo: &str, takeover: &Seen) {
    let second = takeover.holder.clone();
    eventually(SETTLE, || async {
        stamps(mongo, "health_metrics")
            .await
            .iter()
            .any(|s| *s == (second.clone(), takeover.term))
            .then_some(())
    })
    .await;
    let findings = eventually(SETTLE, || async {
        let docs = documents(mongo, "audit_logs").await;
        (docs.len() == 1 && docs[0].get_i64("leader_term") == Ok(takeover.term)).then_some(docs)
    })
    .await;
    assert_eq!(findings[0].get_str("leader_identity"), Ok(second.as_str()));
}

/// SIGTERM with a standby: the work stops, the Lease is released with its term kept, and the
/// standby takes over at its next attempt instead of a LeaseDuration later (within A + SLACK).
async fn stop_gracefully_and_hand_over(
    leader: &mut Replica,
    standby: &Replica,
    seen: &LeaseWatch,
    term: i64,
) {
    eventually(SETTLE, || standby.metric(IS_LEADER)).await;
    // The standby has observed the leader's renews.
    tokio::time::sleep(LD).await;
    let status = leader.terminate(SETTLE).await;
    assert_eq!(status.code(), Some(0), "{}", leader.log_text());
    let released = eventually(SETTLE, || async {
        versions(seen).into_iter().find(|v| v.holder.is_empty())
    })
    .await;
    assert_eq!(released.term, term, "a release keeps the term");
    let handed = eventually(SETTLE, || async {
        versions(seen).into_iter().find(|v| standby.is(&v.holder))
    })
    .await;
    assert!(handed.term > term);
    let handover = handed.at.saturating_duration_since(released.at);
    assert!(
        handover <= A + SLACK,
        "hand-over took {handover:?}\n{}",
        standby.log_text()
    );
    eprintln!("hand-over {handover:?} after the release");
}

/// The last replica stops: exit 0, and the Lease ends released, its duration kept.
async fn stop_the_last_and_assert_the_release(last: &mut Replica, cluster: &Cluster<'_>) {
    let status = last.terminate(SETTLE).await;
    assert_eq!(status.code(), Some(0), "{}", last.log_text());
    let lease = eventually(SETTLE, || async {
        cluster
            .real
            .lease(&cluster.ns, LEASE)
            .await
            .and_then(|l| l.spec)
            .filter(|s| s.holder_identity.as_deref() == Some(""))
    })
    .await;
    assert_eq!(lease.lease_duration_seconds, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real kube-apiserver of `make test-k8s`"]
async fn auditors_elect_through_a_real_api_server_with_the_charts_role() {
    let h1: Timeframe = "1h".parse().expect("1h");
    let db = MariaDb::create().await;
    db.insert(h1, "BTCUSDT", &hours_with_one_gap(current_hour()))
        .await;
    let real = RealApi::from_env();
    println!("kube-apiserver {}", real.version());
    let (ns, kubeconfig) = chart_namespace(&real).await;
    let seen = real.watch_lease(&ns, LEASE).await;
    let cluster = Cluster {
        real: &real,
        ns,
        kubeconfig,
        mysql: db.url.clone(),
        mongo: mongo_url(),
    };

    let mut a = cluster.replica("auditor-a");
    let mut b = cluster.replica("auditor-b");
    let ((leader, follower), (first, term1)) =
        wait_for_one_writing_leader([&mut a, &mut b], &seen, &cluster.mongo).await;
    let takeover =
        crash_the_leader_and_wait_for_the_takeover((leader, &*follower), &seen, (&first, term1))
            .await;
    wait_for_the_new_leaders_writes(&cluster.mongo, &takeover).await;
    let mut c = cluster.replica("auditor-c");
    stop_gracefully_and_hand_over(follower, &c, &seen, takeover.term).await;
    stop_the_last_and_assert_the_release(&mut c, &cluster).await;

    for path in [&cluster.kubeconfig, &a.log, &b.log, &c.log] {
        let _ = std::fs::remove_file(path);
    }
    drop_mongo_database(&cluster.mongo).await;
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
    let kubeconfig = temp_path("k8s-", "kubeconfig-norole", "json");
    real.write_kubeconfig(&kubeconfig, &ns, real.norole_token())
        .expect("write kubeconfig");
    let replica = replica("auditor-x", &ns, &kubeconfig, (&db.url, &mongo));
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
