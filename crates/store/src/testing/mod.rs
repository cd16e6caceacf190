//! Test support against real servers, never mocks: a fresh MariaDB database per test
//! with the extractor's DDL, and a SecantusDB server per test binary with a database per test.
//!
//! Enabled by the `testing` feature; only test code uses it. Panics here are test failures.
#![allow(clippy::missing_panics_doc)]

pub mod commands;
pub mod fresh;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Executor};

use crate::kline::Kline;
use crate::mysql_url::MysqlUri;
use crate::timeframe::Timeframe;

/// The extractor's DDL as it runs in production (`klines_*`, `trades`, `funding_rates`, with their
/// indexes and the defects the audits look for), so tests and the demo seed the same schema.
pub const EXTRACTOR_SCHEMA: &str = crate::seed::EXTRACTOR_SCHEMA;

/// A unique name for a per-test database.
pub fn unique_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// `TEST_MYSQL_URL`, by default the local MariaDB.
pub fn mysql_admin_url() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A per-test MariaDB database holding the extractor's tables; dropped on drop.
pub struct MariaDb {
    /// The database name (`t_<uuid>`).
    pub name: String,
    /// A URL for the database (the admin URL with the path replaced).
    pub url: String,
    /// A pool on the database, for seeding.
    pub pool: MySqlPool,
}

impl MariaDb {
    /// Creates the database and loads the extractor's DDL.
    pub async fn create() -> MariaDb {
        Self::create_with(EXTRACTOR_SCHEMA).await
    }

    /// Creates the database and runs `ddl` in it.
    pub async fn create_with(ddl: &str) -> MariaDb {
        let admin = mysql_admin_url();
        let name = unique_name();
        let admin_opts = MysqlUri::parse(&admin)
            .expect("TEST_MYSQL_URL")
            .to_options();
        let admin_pool = MySqlPoolOptions::new()
            .max_connections(1)
            .connect_with(admin_opts.clone())
            .await
            .expect("connect to TEST_MYSQL_URL (run deploy/local/ensure-mariadb.sh)");
        admin_pool
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create database");
        admin_pool.close().await;
        let opts: MySqlConnectOptions = admin_opts.database(&name);
        let pool = MySqlPoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .expect("connect to the test database");
        crate::seed::apply_ddl(&pool, ddl).await.expect("DDL");
        let (base, _) = admin.rsplit_once('/').expect("URL with a path");
        MariaDb {
            url: format!("{base}/{name}"),
            name,
            pool,
        }
    }

    /// Connection options for the database.
    pub fn options(&self) -> MySqlConnectOptions {
        MysqlUri::parse(&self.url).expect("url").to_options()
    }

    /// Inserts candles into the timeframe's table, as the extractor would (every column set).
    pub async fn insert(&self, tf: Timeframe, symbol: &str, rows: &[Kline]) {
        crate::seed::insert_klines(&self.pool, tf, symbol, rows)
            .await
            .expect("insert klines");
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // Drop the database even when the test panicked: a short-lived runtime on its own
        // thread, since Drop cannot await (test code only).
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(uri) = MysqlUri::parse(&mysql_admin_url()) else {
                    return;
                };
                if let Ok(pool) = MySqlPoolOptions::new()
                    .max_connections(1)
                    .connect_with(uri.to_options())
                    .await
                {
                    let _ = pool
                        .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// A well-formed candle of `tf` opening at `open` (MariaDB-style truncated close_time,
/// extracted ten minutes after the close), with prices around 100.
pub fn candle(symbol: &str, tf: Timeframe, open: DateTime<Utc>) -> Kline {
    let i = chrono::Duration::seconds(tf.seconds());
    let d = |s: &str| s.parse::<Decimal>().expect("decimal literal");
    Kline {
        id: format!("{symbol}_{}", open.timestamp_millis()),
        timestamp: open,
        open_time: open,
        close_time: open + i - chrono::Duration::seconds(1),
        interval: tf.label().to_owned(),
        open: d("100"),
        high: d("101"),
        low: d("99"),
        close: d("100.5"),
        volume: d("10"),
        quote_asset_volume: d("1000"),
        number_of_trades: 42,
        taker_buy_base: d("4"),
        taker_buy_quote: d("400"),
        extracted_at: open + i + chrono::Duration::minutes(10),
    }
}

/// `Utc.with_ymd_and_hms(…)` for literals in tests.
pub fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid literal")
}

/// The SecantusDB server of this test binary, started on first use (or `TEST_MONGODB_URL`).
struct MongoServer {
    base_url: String,
}

static MONGO: OnceLock<MongoServer> = OnceLock::new();

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .map_or(manifest.clone(), PathBuf::from)
}

fn start_mongo() -> MongoServer {
    if let Ok(url) = std::env::var("TEST_MONGODB_URL") {
        return MongoServer {
            base_url: url.trim_end_matches('/').to_owned(),
        };
    }
    let bin = repo_root().join(".venv-mongo/bin/secantusd-py");
    assert!(
        bin.exists(),
        "{} is missing: run deploy/local/ensure-mongo.sh",
        bin.display()
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    // A shell watchdog owns the server and kills it when this test process exits, so no
    // server outlives the test binary (statics are never dropped).
    let script = format!(
        "'{bin}' --host 127.0.0.1 --port {port} --storage-path :memory: --log-level WARNING & s=$!; \
         while kill -0 {pid} 2>/dev/null && kill -0 $s 2>/dev/null; do sleep 0.5; done; kill $s 2>/dev/null",
        bin = bin.display(),
        pid = std::process::id(),
    );
    // Detached on purpose: the watchdog ends with this process and init reaps it.
    #[allow(clippy::zombie_processes)]
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // The watchdog outlives the test by up to half a second; holding the test's stderr
        // would make the harness wait for it (nextest reports such tests as leaky).
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn secantusd-py");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "secantusd-py did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    MongoServer {
        base_url: format!("mongodb://127.0.0.1:{port}"),
    }
}

/// A benchmark's sizes: the comma-separated numbers in the environment variable `var`, else
/// those of `default`.
///
/// # Panics
/// When a value is not a number.
pub fn sizes_from_env(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var}: numbers, comma-separated"))
        })
        .collect()
}

/// A per-test Mongo database URL (`mongodb://127.0.0.1:<port>/t_<uuid>`) on this binary's
/// server. Drop the database with [`drop_mongo_database`] at the end of the test.
pub fn mongo_url() -> String {
    let server = MONGO.get_or_init(start_mongo);
    format!("{}/{}", server.base_url, unique_name())
}

/// Drops the database a [`mongo_url`] names, waiting at most 10 s: a transaction a killed
/// writer left open can hold the drop up until the server ends it, and the database is a
/// test's own (gone with the server anyway).
pub async fn drop_mongo_database(url: &str) {
    if let Ok(client) = mongodb::Client::with_uri_str(url).await {
        let db = client.database(&crate::mongo_url::database_name(url));
        let _ = tokio::time::timeout(Duration::from_secs(10), db.drop().into_future()).await;
    }
}

/// A SecantusDB server of its own (on a free port, its data in memory or in a temporary
/// directory), for benchmarks that start every scenario from the same state, and for tests that
/// stop their server. Killed (this PID only) on drop.
///
/// `DM_TEST_MONGOD` names another build of the same server to run instead of the pinned
/// `secantusd-py`: `secantusd-rs`, the Rust one, is several times faster, so a benchmark
/// measures less of the test server's own time (it takes a data directory, not `:memory:`).
pub struct MongoInstance {
    /// `mongodb://127.0.0.1:<port>`.
    pub base_url: String,
    /// The port it listens on.
    pub port: u16,
    child: std::process::Child,
    /// The data directory to remove on drop, when the server is not in memory.
    data_dir: Option<PathBuf>,
}

impl MongoInstance {
    /// Starts one and waits until it listens.
    pub fn start() -> MongoInstance {
        Self::start_with(&[])
    }

    /// Starts one reporting a standalone server (no replica set, so no transactions), as a
    /// plain `mongod` would.
    pub fn start_standalone() -> MongoInstance {
        Self::start_with(&["--standalone"])
    }

    /// The server binary: `DM_TEST_MONGOD`, else `.venv-mongo/bin/secantusd-py`.
    pub fn binary() -> PathBuf {
        std::env::var_os("DM_TEST_MONGOD").map_or_else(
            || repo_root().join(".venv-mongo/bin/secantusd-py"),
            PathBuf::from,
        )
    }

    fn start_with(extra: &[&str]) -> MongoInstance {
        let bin = Self::binary();
        assert!(
            bin.exists(),
            "{} is missing: run deploy/local/ensure-mongo.sh",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // Only the Python server keeps its data in memory; the others get a directory.
        let data_dir = (!bin.ends_with("secantusd-py"))
            .then(|| std::env::temp_dir().join(format!("dm-mongod-{}", unique_name())));
        let storage = data_dir
            .as_ref()
            .map_or_else(|| ":memory:".to_owned(), |d| d.display().to_string());
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--storage-path", &storage, "--log-level", "WARNING"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen",
                bin.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        MongoInstance {
            base_url: format!("mongodb://127.0.0.1:{port}"),
            port,
            child,
            data_dir,
        }
    }
}

impl Drop for MongoInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
