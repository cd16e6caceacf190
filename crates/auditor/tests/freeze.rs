//! The freeze test (slow; `make test-faults`): two `dm-auditor run` replicas on the in-process
//! fake Lease API server, real MariaDB and a Mongo-compatible server. The leader is SIGSTOPped
//! at a random point of its cycles for longer than LeaseDuration; the other takes over and
//! writes (after the resume, if the freeze left a transaction open on the documents it
//! writes); the frozen one is resumed. From Mongo (every document's `leader_term` and its
//! server-side `written_at`) no write of the old term may land after the new term's first write
//! nor after the resume. `FREEZE_TRIALS` trials (default 3); `FREEZE_REPORT=<file>` appends the
//! figures.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use leader::testing::FakeApi;
use rand::Rng;
use store::Timeframe;
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use support::{Auditor, documents};
use testkit::{eventually, free_port};
use tokio::time::Instant;

const NS: &str = "dm-freeze-test";
const LEASE: &str = "data-manager-auditor";
const SYMBOLS: [&str; 8] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT", "SOLUSDT", "XRPUSDT", "DOTUSDT", "LTCUSDT",
];
/// LeaseDuration 1 s, RenewDeadline 600 ms, RetryPeriod 200 ms.
const LD: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_secs(30);

fn start(pod: &str, kubeconfig: &Path, mysql: &str, mongo: &str, log: &Path) -> Auditor {
    Auditor::start(
        &["run"],
        &[
            ("MYSQL_URI", mysql.to_owned()),
            ("MONGODB_URL", mongo.to_owned()),
            ("SUPPORTED_PAIRS", SYMBOLS.join(",")),
            ("AUDIT_TIMEFRAMES", "5m,15m,1h".into()),
            ("AUDIT_INTERVAL", "1s".into()),
            ("AUDIT_RETRY_MIN", "200ms".into()),
            ("PROBE_INTERVAL", "500ms".into()),
            ("DB_TIMEOUT", "30s".into()),
            ("SHUTDOWN_GRACE", "5s".into()),
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("POD_NAMESPACE", NS.into()),
            ("POD_NAME", pod.into()),
            ("LEASE_DURATION", "1s".into()),
            ("LEASE_RENEW_DEADLINE", "600ms".into()),
            ("LEASE_RETRY_PERIOD", "200ms".into()),
            ("METRICS_PORT", free_port().to_string()),
            ("METRICS_HOST", "127.0.0.1".into()),
            ("LOG_FORMAT", "text".into()),
            ("LOG_LEVEL", "WARN".into()),
        ],
        log,
    )
}

fn signal(process: &Auditor, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &process.0.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

fn lease(fake: &FakeApi) -> Option<(String, i64)> {
    let spec = fake.lease(NS, LEASE)?.spec?;
    Some((
        spec.holder_identity.unwrap_or_default(),
        i64::from(spec.lease_transitions.unwrap_or(0)),
    ))
}

/// (collection, leader_term, written_at) of every result document.
async fn writes(url: &str) -> Vec<(&'static str, i64, DateTime<Utc>)> {
    let mut out = Vec::new();
    for coll in ["audit_logs", "health_metrics"] {
        for d in documents(url, coll).await {
            if let (Ok(term), Ok(at)) = (d.get_i64("leader_term"), d.get_datetime("written_at")) {
                let at = DateTime::from_timestamp_millis(at.timestamp_millis()).expect("date");
                out.push((coll, term, at));
            }
        }
    }
    out
}

/// When a document of `term` was first seen in the store, polling for up to `within`.
async fn first_write_seen(mongo: &str, term: i64, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    loop {
        if writes(mongo).await.iter().any(|(_, t, _)| *t == term) {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Keeps the old leader frozen for at least 2 × LeaseDuration, watching for the new term's
/// first write, then resumes it; if the new term had not written yet, waits for that write.
/// Returns the failover (SIGSTOP to that write), whether it came only after the resume, and
/// the resume time.
async fn freeze_until_resumed(
    leader: &Auditor,
    mongo: &str,
    new_term: i64,
    stopped: Instant,
) -> (Duration, bool, DateTime<Utc>) {
    let frozen = LD * 2;
    let left = frozen.saturating_sub(stopped.elapsed());
    let seen_frozen = first_write_seen(mongo, new_term, left).await;
    tokio::time::sleep(frozen.saturating_sub(stopped.elapsed())).await;
    let resumed = Utc::now();
    signal(leader, "-CONT");
    let seen = match seen_frozen {
        Some(t) => t,
        None => first_write_seen(mongo, new_term, SETTLE)
            .await
            .expect("the new term writes once the old leader resumed"),
    };
    (seen - stopped, seen_frozen.is_none(), resumed)
}

/// Stops both replicas with SIGTERM and waits for them to exit, so neither leaves a
/// transaction open on the server (a killed writer's stays open until the server's lifetime
/// limit, and would hold up dropping the database).
async fn stop_gracefully(mut replicas: [Auditor; 2]) {
    for r in &replicas {
        signal(r, "-TERM");
    }
    for r in &mut replicas {
        let deadline = Instant::now() + SETTLE;
        while matches!(r.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What one trial measured.
#[derive(Debug)]
struct Trial {
    /// SIGSTOP to the first document written under the new term, as seen by polling.
    failover: Duration,
    /// Whether that first write came only after the resume: the new term's first round had
    /// not committed within the freeze (its first cycle was slower than the freeze, or it
    /// waited for a transaction the frozen replica had left open).
    blocked: bool,
    /// Old-term documents written after the new term's first write or after the resume.
    violations: usize,
    /// Old-term documents in the store at the end (written before the freeze or while frozen
    /// writes were still within the deadline).
    old_docs: usize,
}

async fn trial(db: &MariaDb, n: usize) -> Trial {
    let mongo = mongo_url();
    let fake = FakeApi::start().await;
    let dir = std::env::temp_dir();
    let kubeconfig = dir.join(format!("dm-freeze-{}-{n}.yaml", std::process::id()));
    fake.write_kubeconfig(&kubeconfig, NS).expect("kubeconfig");
    let logs: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|p| dir.join(format!("dm-freeze-{}-{n}-{p}.log", std::process::id())))
        .collect();
    let a = start("freeze-a", &kubeconfig, &db.url, &mongo, &logs[0]);
    let b = start("freeze-b", &kubeconfig, &db.url, &mongo, &logs[1]);

    // A leader that has written at least one cycle.
    let (holder, old_term) = eventually(SETTLE, || async {
        let (holder, term) = lease(&fake)?;
        let w = writes(&mongo).await;
        (!holder.is_empty()
            && w.iter()
                .any(|(c, t, _)| *c == "health_metrics" && *t == term))
        .then_some((holder, term))
    })
    .await;
    let leader_is_a = holder.starts_with("freeze-a_");
    let leader = if leader_is_a { &a } else { &b };
    // Freeze at a random point of the leader's cycles.
    let offset = rand::rng().random_range(0..1_000);
    tokio::time::sleep(Duration::from_millis(offset)).await;
    signal(leader, "-STOP");
    let stopped = Instant::now();
    let new_term = eventually(SETTLE, || async {
        let (h, term) = lease(&fake)?;
        (term > old_term && !h.is_empty()).then_some(term)
    })
    .await;
    let (failover, blocked, resumed) =
        freeze_until_resumed(leader, &mongo, new_term, stopped).await;
    // Give the resumed process time to try whatever it would still write.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let w = writes(&mongo).await;
    let first_new = w
        .iter()
        .filter(|(_, t, _)| *t == new_term)
        .map(|(_, _, at)| *at)
        .min()
        .expect("new term wrote");
    let old: Vec<_> = w.iter().filter(|(_, t, _)| *t == old_term).collect();
    let violations = old
        .iter()
        .filter(|(_, _, at)| *at > first_new || *at > resumed)
        .count();
    if violations > 0 {
        for l in &logs {
            eprintln!(
                "--- {}\n{}",
                l.display(),
                std::fs::read_to_string(l).unwrap_or_default()
            );
        }
    }
    stop_gracefully([a, b]).await;
    drop_mongo_database(&mongo).await;
    for f in logs.iter().chain([&kubeconfig]) {
        let _ = std::fs::remove_file(f);
    }
    Trial {
        failover,
        blocked,
        violations,
        old_docs: old.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow fault suite: make test-faults"]
async fn a_frozen_leader_never_writes_after_the_new_term_began() {
    let trials: usize = std::env::var("FREEZE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let db = MariaDb::create().await;
    let hour = Utc::now().timestamp() / 3600 * 3600;
    for tf in ["5m", "15m", "1h"] {
        let t: Timeframe = tf.parse().expect("tf");
        for sym in SYMBOLS {
            let rows: Vec<_> = (2..(86_400 / t.seconds()))
                .filter(|i| i % 17 != 5) // a few gaps: findings to write
                .map(|i| {
                    let open = DateTime::from_timestamp(hour - i * t.seconds(), 0).expect("t");
                    candle(sym, t, open)
                })
                .collect();
            db.insert(t, sym, &rows).await;
        }
    }
    let mut results = Vec::new();
    for n in 0..trials {
        let t = trial(&db, n).await;
        eprintln!("trial {n}: {t:?}");
        results.push(t);
    }
    let violations: usize = results.iter().map(|t| t.violations).sum();
    let mut failovers: Vec<f64> = results.iter().map(|t| t.failover.as_secs_f64()).collect();
    failovers.sort_by(f64::total_cmp);
    let median = failovers[failovers.len() / 2];
    let max = failovers[failovers.len() - 1];
    let old_docs: usize = results.iter().map(|t| t.old_docs).sum();
    let blocked = results.iter().filter(|t| t.blocked).count();
    let line = format!(
        "freeze: {trials} trials, {violations} violations, failover (SIGSTOP → first write of \
         the new term) median {median:.2} s, max {max:.2} s, {blocked} trials in which the new \
         term first wrote after the resume, {old_docs} old-term documents checked"
    );
    eprintln!("{line}");
    if let Ok(path) = std::env::var("FREEZE_REPORT") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("report file");
        writeln!(f, "{line}").expect("write report");
    }
    assert_eq!(violations, 0, "{line}");
}
