//! dm-auditor as a process: `once --json`, `run` on real MariaDB and Mongo, a MySQL outage,
//! and secrets kept out of every output.

mod support;

use std::time::Duration;

use mongodb::bson::{Document, doc};
use store::Timeframe;
use store::testing::{MariaDb, at, candle, drop_mongo_database, mongo_url};
use support::{Auditor, Proxy, btcusdt_hours, current_hour, run_env};
use testkit::{eventually, free_port, http_get, metric};

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn log_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "dm-auditor-{name}-{}.log",
        uuid::Uuid::new_v4().simple()
    ))
}

#[tokio::test]
async fn once_json_prints_health_and_findings_per_dataset() {
    let db = MariaDb::create().await;
    let rows: Vec<_> = (1..24)
        .filter(|h| ![5, 6].contains(h))
        .map(|h| candle("BTCUSDT", h1(), at(2025, 10, 21, h, 0, 0)))
        .collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dm-auditor"))
        .args([
            "once",
            "--json",
            "--no-write",
            "--now",
            "2025-10-22T00:30:00Z",
        ])
        .env("MYSQL_URI", db.url.replace("mysql://", "mysql+pymysql://"))
        .env("AUDIT_TIMEFRAMES", "1h,1m")
        .env("GAP_TOLERANCE_SECONDS", "20")
        .env("SUPPORTED_PAIRS", "BTCUSDT")
        .output()
        .expect("run once");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let ds = v["datasets"].as_array().expect("datasets");
    assert_eq!(ds.len(), 2);
    assert_eq!(
        (ds[0]["symbol"].as_str(), ds[0]["timeframe"].as_str()),
        (Some("BTCUSDT"), Some("1h"))
    );
    let h = &ds[0]["health"];
    assert!((h["completeness"].as_f64().expect("c") - 90.476_190_476_190_48).abs() < 1e-9);
    assert_eq!(h["freshness_seconds"].as_i64(), Some(1_800));
    assert!((h["quality_score"].as_f64().expect("q") - 92.190_476_190_476_19).abs() < 1e-9);
    let f = &ds[0]["findings"][0];
    assert_eq!(f["check"], "gap");
    assert_eq!(f["start"], "2025-10-21T05:00:00Z");
    assert_eq!(f["end"], "2025-10-21T07:00:00Z");
    assert_eq!(f["missing_candles"], 2);
    assert_eq!(f["severity"], "high");
    assert_eq!(ds[1]["status"], "table_missing");
    assert_eq!(ds[1]["findings"][0]["check"], "table_missing");
    assert_eq!(ds[1]["findings"][0]["severity"], "info");
}

#[test]
fn passwords_never_reach_stderr_or_stdout() {
    let port = free_port();
    for (uri_var, uri) in [
        (
            "MYSQL_URI",
            format!("mysql+pymysql://auditor:hunter2-secret@127.0.0.1:{port}/petrosa_crypto"),
        ),
        (
            "MYSQL_URI",
            "postgres://auditor:hunter2-secret@h/db".to_owned(),
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dm-auditor"))
            .args([
                "once",
                "--no-write",
                "--db-timeout",
                "2s",
                "--log-format",
                "text",
            ])
            .env(uri_var, &uri)
            .output()
            .expect("run once");
        assert!(!out.status.success());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(
            text.contains("MYSQL_URI") || text.contains("mysql"),
            "{text}"
        );
    }
}

async fn count(url: &str, coll: &str) -> u64 {
    let client = mongodb::Client::with_uri_str(url).await.expect("client");
    client
        .database(&store::mongo_url::database_name(url))
        .collection::<Document>(coll)
        .count_documents(doc! {})
        .await
        .unwrap_or(0)
}

/// The `MYSQL_URI` of `db` through `proxy`, with the admin URL's user.
fn mysql_through(proxy: &Proxy, db: &MariaDb) -> String {
    let admin_url = store::testing::mysql_admin_url();
    let user_part = admin_url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .unwrap_or("root");
    format!("mysql://{user_part}@127.0.0.1:{}/{}", proxy.port, db.name)
}

const OK_CYCLES: &str = "data_manager_audit_cycles_total{outcome=\"ok\"}";
const FAILED_CYCLES: &str = "data_manager_audit_cycles_total{outcome=\"source_error\"}";
const WITHIN: Duration = Duration::from_secs(30);

/// Leading (no election), the auditor writes two cycles, is ready, and finds nothing in the 23
/// clean closed rows.
async fn wait_for_two_ok_cycles(metrics_port: u16, url: &str) {
    eventually(WITHIN, || async {
        (count(url, "health_metrics").await >= 2).then_some(())
    })
    .await;
    assert_eq!(
        metric(metrics_port, "data_manager_audit_leader_status"),
        Some(1.0)
    );
    assert_eq!(
        http_get(metrics_port, "/health/readiness").map(|r| r.0),
        Some(200)
    );
    // The health documents are written before their cycle is counted, so
    // the second cycle's count may trail its documents by a moment.
    eventually(WITHIN, || async {
        (metric(metrics_port, OK_CYCLES)? >= 2.0).then_some(())
    })
    .await;
    // The 23 closed rows are clean: one dataset, no finding.
    assert_eq!(count(url, "audit_logs").await, 0);
}

/// MySQL unreachable: cycles fail, readiness drops to 503, the process stays live.
async fn cut_mysql_and_wait_for_failed_cycles(proxy: &mut Proxy, metrics_port: u16) {
    proxy.cut();
    eventually(WITHIN, || async {
        (metric(metrics_port, FAILED_CYCLES)? >= 2.0).then_some(())
    })
    .await;
    eventually(WITHIN, || async {
        (http_get(metrics_port, "/health/readiness")?.0 == 503).then_some(())
    })
    .await;
    assert_eq!(
        http_get(metrics_port, "/health/liveness").map(|r| r.0),
        Some(200),
        "no crash, still live"
    );
}

/// MySQL back: a cycle succeeds again and readiness returns to 200.
async fn restore_mysql_and_wait_for_an_ok_cycle(proxy: &mut Proxy, metrics_port: u16) {
    proxy.start().await;
    let ok_at_restart = metric(metrics_port, OK_CYCLES).expect("ok");
    eventually(WITHIN, || async {
        (metric(metrics_port, OK_CYCLES)? > ok_at_restart).then_some(())
    })
    .await;
    eventually(WITHIN, || async {
        (http_get(metrics_port, "/health/readiness")?.0 == 200).then_some(())
    })
    .await;
}

/// The failures were logged, one summarised line per interval rather than one per failure,
/// and the recovered cycle's summary too.
fn assert_failures_summarised_in_the_log(log: &std::path::Path, metrics_port: u16) {
    let text = std::fs::read_to_string(log).expect("log");
    let failure_lines = text
        .lines()
        .filter(|l| l.contains("audit cycle failed"))
        .count();
    assert!(failure_lines >= 1, "{text}");
    let failures = metric(metrics_port, FAILED_CYCLES).expect("n");
    assert!(
        (failure_lines as f64) < failures.max(2.0) || failure_lines <= 2,
        "one summarised line per interval: {failure_lines} lines for {failures} failures"
    );
    assert!(
        text.contains("Audit cycle complete: audited=1, gaps=0"),
        "{text}"
    );
}

#[tokio::test]
async fn run_audits_while_leading_survives_a_mysql_outage_and_recovers() {
    let db = MariaDb::create().await;
    let hour = current_hour();
    db.insert(h1(), "BTCUSDT", &btcusdt_hours(hour, 1..30))
        .await;
    let mut proxy = Proxy::new("127.0.0.1:3306").await;
    let url = mongo_url();
    let metrics_port = free_port();
    let log = log_path("run");
    let mut env = run_env(&mysql_through(&proxy, &db), &url, "2s", metrics_port);
    env.push(("LEADER_ELECTION", "disabled".into()));
    let _auditor = Auditor::start(&["run"], &env, &log);

    wait_for_two_ok_cycles(metrics_port, &url).await;
    cut_mysql_and_wait_for_failed_cycles(&mut proxy, metrics_port).await;
    restore_mysql_and_wait_for_an_ok_cycle(&mut proxy, metrics_port).await;
    assert_failures_summarised_in_the_log(&log, metrics_port);
    let _ = std::fs::remove_file(&log);
    drop_mongo_database(&url).await;
}
