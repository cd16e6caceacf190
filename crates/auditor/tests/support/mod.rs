//! Shared setup of the auditor's integration tests: the binary as a child process with the
//! environment most tests run it with, a TCP proxy a test can cut to simulate a MySQL outage,
//! hourly candles with one gap; the election tests' replicas ([`election`]) and the fenced-write
//! tests' stale terms ([`fencing`]). Ports, polling and `/metrics` reads are `testkit`'s.
#![allow(dead_code)]

pub mod election;
pub mod fencing;

use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use store::testing::candle;
use store::{Kline, Timeframe};
use testkit::free_port;
use tokio::io::copy_bidirectional;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The dm-auditor binary with a clean environment plus `envs`; killed on drop.
pub struct Auditor(pub Child);

impl Auditor {
    /// Starts `dm-auditor <args>`; stdout and stderr go to the given files.
    pub fn start(args: &[&str], envs: &[(&str, String)], log: &std::path::Path) -> Auditor {
        let out = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dm-auditor"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn dm-auditor");
        Auditor(child)
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every document of `coll` in the database `url` names.
pub async fn documents(url: &str, coll: &str) -> Vec<Document> {
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

/// `dm-auditor run`'s environment in these tests: BTCUSDT's 1h klines only (the trades datasets
/// have their own tests, in `tests/trades.rs`), a cycle a second, retries and probes every
/// 200 ms, `DB_TIMEOUT` `db_timeout`, `/metrics` on 127.0.0.1:`admin_port`, text logs.
pub fn run_env(
    mysql: &str,
    mongo: &str,
    db_timeout: &str,
    admin_port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("MYSQL_URI", mysql.to_owned()),
        ("MONGODB_URL", mongo.to_owned()),
        ("SUPPORTED_PAIRS", "BTCUSDT".into()),
        ("AUDIT_TIMEFRAMES", "1h".into()),
        ("AUDIT_TRADES", "false".into()),
        ("AUDIT_INTERVAL", "1s".into()),
        ("AUDIT_RETRY_MIN", "200ms".into()),
        ("PROBE_INTERVAL", "200ms".into()),
        ("DB_TIMEOUT", db_timeout.to_owned()),
        ("METRICS_PORT", admin_port.to_string()),
        ("METRICS_HOST", "127.0.0.1".into()),
        ("LOG_FORMAT", "text".into()),
    ]
}

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

/// The start of the current hour, in Unix seconds.
pub fn current_hour() -> i64 {
    Utc::now().timestamp() / 3600 * 3600
}

/// The opening of the hourly candle `h` hours before `hour`.
pub fn hours_before(hour: i64, h: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(hour - h * 3600, 0).expect("t")
}

/// BTCUSDT's closed hourly candles opening 1 to 29 hours before `hour`, without those opening
/// 10 and 11 hours before: one gap of two candles. The newest due slot lags the clock by the
/// 1h timeframe's 2 h allowance, so an hour boundary crossed during a test changes no finding.
pub fn hours_with_one_gap(hour: i64) -> Vec<Kline> {
    btcusdt_hours(hour, (1..30).filter(|h| ![10, 11].contains(h)))
}

/// BTCUSDT's hourly candles opening each of `hours` hours before `hour`.
pub fn btcusdt_hours(hour: i64, hours: impl IntoIterator<Item = i64>) -> Vec<Kline> {
    hours
        .into_iter()
        .map(|h| candle("BTCUSDT", h1(), hours_before(hour, h)))
        .collect()
}

/// The `_id` of the gap finding of [`hours_with_one_gap`].
pub fn gap_id(hour: i64) -> String {
    format!(
        "BTCUSDT|1h|gap|{}",
        hours_before(hour, 11).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

/// A TCP proxy from a local port to `target`; `cut` drops every connection and stops
/// listening, `start` on the same port resumes.
pub struct Proxy {
    pub port: u16,
    target: String,
    stop: Option<CancellationToken>,
}

impl Proxy {
    /// A proxy on a free port, listening.
    pub async fn new(target: &str) -> Proxy {
        let mut p = Proxy {
            port: free_port(),
            target: target.to_owned(),
            stop: None,
        };
        p.start().await;
        p
    }

    /// Starts listening (again).
    pub async fn start(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("proxy bind");
        let stop = CancellationToken::new();
        let target = self.target.clone();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = token.cancelled() => return,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let target = target.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        self.stop = Some(stop);
    }

    /// Drops every connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(s) = self.stop.take() {
            s.cancel();
        }
    }
}
