//! Fault injection (slow; `make test-faults`): the test starts its own Mongo-compatible server
//! (SecantusDB, own data directory, free port), SIGKILLs it while `dm-auditor run` writes, and
//! restarts it. The process must stay up, readiness must flip and recover, and the cycles
//! computed during the outage must land once each, with the findings a clean audit finds.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mongodb::bson::{Document, doc};
use store::Timeframe;
use store::testing::MariaDb;
use support::{Auditor, current_hour, documents, gap_id, hours_with_one_gap, run_env};
use testkit::{eventually, free_port, http_get, metric};

const SETTLE: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .map_or(manifest.clone(), PathBuf::from)
}

/// Our own SecantusDB: its process, port and data directory (kept across restarts).
struct Mongo {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Mongo {
    fn start(port: u16, dir: &Path) -> Mongo {
        let bin = repo_root().join(".venv-mongo/bin/secantusd-py");
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--storage-path")
            .arg(dir)
            .args(["--sync-on-commit", "--log-level", "WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn secantusd-py");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "mongo did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Mongo {
            child: Some(child),
            port,
            dir: dir.to_owned(),
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/faults", self.port)
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking")
}

/// `dm-auditor run` without election, `DB_TIMEOUT` 1 s, admin port `admin`, into `log`.
fn start_auditor(mysql: &str, mongo: &str, admin: u16, log: &Path) -> Auditor {
    let mut env = run_env(mysql, mongo, "1s", admin);
    env.push(("LEADER_ELECTION", "disabled".into()));
    Auditor::start(&["run"], &env, log)
}

/// The readiness status code on the admin port, if it answers.
async fn readiness(admin: u16) -> Option<u16> {
    blocking(move || http_get(admin, "/health/readiness"))
        .await
        .map(|(s, _)| s)
}

/// A metric on the admin port, read off the runtime's threads.
async fn metric_of(admin: u16, series: &'static str) -> Option<f64> {
    blocking(move || metric(admin, series)).await
}

/// A unique path in the temporary directory, `<prefix>-<uuid><suffix>`.
fn temp_path(prefix: &str, suffix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}{suffix}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Mongo is killed while the auditor writes every second: readiness drops, at least three
/// cycles are owed, the process stays up. Returns when the outage began.
async fn kill_mongo_and_wait_for_owed_cycles(
    mongo: &mut Mongo,
    auditor: &mut Auditor,
    admin: u16,
) -> DateTime<Utc> {
    mongo.kill();
    let down_from = Utc::now();
    eventually(SETTLE, || async {
        (readiness(admin).await == Some(503)).then_some(())
    })
    .await;
    // Three owed cycles: the first may have started (and taken its `computed_at`) before the
    // kill and only failed to write after it, so at least two are computed while Mongo is down.
    eventually(SETTLE, || async {
        let owed = metric_of(admin, "data_manager_audit_pending_cycles").await?;
        (owed >= 3.0).then_some(())
    })
    .await;
    assert!(
        auditor.0.try_wait().expect("wait").is_none(),
        "no exit while Mongo is down"
    );
    down_from
}

/// Mongo back: every owed cycle is written, readiness returns, the process still runs.
async fn wait_for_the_owed_cycles_to_land(auditor: &mut Auditor, admin: u16) {
    eventually(SETTLE, || async {
        let owed = metric_of(admin, "data_manager_audit_pending_cycles").await?;
        (owed == 0.0 && readiness(admin).await == Some(200)).then_some(())
    })
    .await;
    assert!(
        auditor.0.try_wait().expect("wait").is_none(),
        "still running"
    );
}

/// At least two health documents computed during the outage, one per cycle, and the findings
/// of a clean audit, once each.
async fn assert_the_outage_cycles_landed_once(
    url: &str,
    (down_from, up_again): (DateTime<Utc>, DateTime<Utc>),
    hour: i64,
    log: &Path,
) {
    let health = documents(url, "health_metrics").await;
    let during: Vec<_> = health
        .iter()
        .filter_map(|d| d.get_datetime("computed_at").ok())
        .map(|t| DateTime::from_timestamp_millis(t.timestamp_millis()).expect("t"))
        .filter(|t| *t > down_from && *t < up_again)
        .collect();
    assert!(during.len() >= 2, "the owed cycles landed: {during:?}");
    let ids: BTreeSet<_> = health
        .iter()
        .map(|d| d.get_str("_id").expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), health.len(), "one document per cycle");
    // The findings are those of a clean audit, once each.
    let kinds: BTreeSet<String> = documents(url, "audit_logs")
        .await
        .iter()
        .map(|d| d.get_str("_id").expect("id").to_owned())
        .collect();
    assert_eq!(
        kinds,
        [gap_id(hour)].into_iter().collect(),
        "{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow fault suite: make test-faults"]
async fn mongo_killed_mid_write_and_restarted_loses_nothing_and_writes_nothing_twice() {
    let db = MariaDb::create().await;
    let h1: Timeframe = "1h".parse().expect("tf");
    let hour = current_hour();
    db.insert(h1, "BTCUSDT", &hours_with_one_gap(hour)).await;
    let dir = temp_path("dm-faults-mongo", "");
    let mut mongo = Mongo::start(free_port(), &dir);
    let url = mongo.url();
    let admin = free_port();
    let log = temp_path("dm-faults", ".log");
    let mut auditor = start_auditor(&db.url, &url, admin, &log);
    eventually(SETTLE, || async {
        let n = documents(&url, "health_metrics").await.len();
        (n >= 2 && readiness(admin).await == Some(200)).then_some(())
    })
    .await;

    let down_from = kill_mongo_and_wait_for_owed_cycles(&mut mongo, &mut auditor, admin).await;
    let mongo = Mongo::start(mongo.port, &dir);
    let up_again = Utc::now();
    wait_for_the_owed_cycles_to_land(&mut auditor, admin).await;
    assert_the_outage_cycles_landed_once(&url, (down_from, up_again), hour, &log).await;
    drop(auditor);
    drop(mongo);
    let _ = std::fs::remove_file(&log);
}

/// Our own MariaDB server: own data directory, free port, no grant tables (any user connects).
struct MySql {
    child: Option<Child>,
    port: u16,
}

impl MySql {
    fn install(dir: &Path) {
        let ok = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--skip-test-db"])
            .arg(format!("--datadir={}", dir.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mariadb-install-db")
            .success();
        assert!(ok, "mariadb-install-db failed");
    }

    fn start(port: u16, dir: &Path) -> MySql {
        let bin = if Path::new("/usr/sbin/mariadbd").exists() {
            "/usr/sbin/mariadbd".to_owned()
        } else {
            "mariadbd".to_owned()
        };
        let child = Command::new(bin)
            .args(["--no-defaults", "--user=root", "--skip-grant-tables"])
            .args(["--bind-address=127.0.0.1", &format!("--port={port}")])
            .arg(format!("--datadir={}", dir.display()))
            .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mariadbd did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        MySql {
            child: Some(child),
            port,
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for MySql {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Our own MariaDB in `dir`, with the extractor's schema in `petrosa_crypto` and the hourly
/// candles with one gap before `hour`. Returns the server and the database's URL.
async fn own_mariadb_with_one_gap(dir: &Path, hour: i64) -> (MySql, String) {
    use sqlx::Executor;

    MySql::install(dir);
    let mysql = MySql::start(free_port(), dir);
    let base = format!("mysql://root@127.0.0.1:{}", mysql.port);
    {
        let admin = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(1)
            .connect(&format!("{base}/mysql"))
            .await
            .expect("connect to our mariadbd");
        admin
            .execute("CREATE DATABASE petrosa_crypto")
            .await
            .expect("create database");
        admin.close().await;
    }
    let url = format!("{base}/petrosa_crypto");
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    store::seed::apply_ddl(&pool, store::seed::EXTRACTOR_SCHEMA)
        .await
        .expect("ddl");
    let h1: Timeframe = "1h".parse().expect("tf");
    store::seed::insert_klines(&pool, h1, "BTCUSDT", &hours_with_one_gap(hour))
        .await
        .expect("rows");
    pool.close().await;
    (mysql, url)
}

/// How many health documents the database `url` names holds.
async fn health_count(url: &str) -> u64 {
    let client = mongodb::Client::with_uri_str(url).await.expect("client");
    client
        .database(&store::mongo_url::database_name(url))
        .collection::<Document>("health_metrics")
        .count_documents(doc! {})
        .await
        .unwrap_or(0)
}

/// MySQL is killed: readiness drops, cycles fail, the process stays up.
async fn kill_mysql_and_wait_for_failed_cycles(
    mysql: &mut MySql,
    auditor: &mut Auditor,
    admin: u16,
) {
    mysql.kill();
    eventually(SETTLE, || async {
        (readiness(admin).await == Some(503)).then_some(())
    })
    .await;
    eventually(SETTLE, || async {
        let failed = metric_of(
            admin,
            r#"data_manager_audit_cycles_total{outcome="source_error"}"#,
        )
        .await?;
        (failed >= 2.0).then_some(())
    })
    .await;
    assert!(
        auditor.0.try_wait().expect("wait").is_none(),
        "no exit while MySQL is down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow fault suite: make test-faults"]
async fn mysql_killed_mid_cycle_and_restarted_recovers_without_a_crash_loop() {
    let dir = temp_path("dm-faults-mysql", "");
    let hour = current_hour();
    let (mut mysql, url) = own_mariadb_with_one_gap(&dir, hour).await;
    let mongo = store::testing::mongo_url();
    let admin = free_port();
    let log = temp_path("dm-faults", ".log");
    let mut auditor = start_auditor(&url, &mongo, admin, &log);
    eventually(SETTLE, || async {
        (health_count(&mongo).await >= 2 && readiness(admin).await == Some(200)).then_some(())
    })
    .await;

    kill_mysql_and_wait_for_failed_cycles(&mut mysql, &mut auditor, admin).await;
    let before = health_count(&mongo).await;
    let mysql = MySql::start(mysql.port, &dir);
    eventually(SETTLE, || async {
        (readiness(admin).await == Some(200) && health_count(&mongo).await > before).then_some(())
    })
    .await;
    assert!(
        auditor.0.try_wait().expect("wait").is_none(),
        "still running"
    );
    let ids: BTreeSet<String> = documents(&mongo, "audit_logs")
        .await
        .iter()
        .map(|d| d.get_str("_id").expect("id").to_owned())
        .collect();
    assert_eq!(
        ids,
        [gap_id(hour)].into_iter().collect(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(auditor);
    drop(mysql);
    store::testing::drop_mongo_database(&mongo).await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&log);
}
