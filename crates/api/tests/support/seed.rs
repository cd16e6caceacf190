//! A results database written by a real audit and a real analytics cycle over klines seeded in
//! MariaDB with known faults, and dm-api serving it over a real socket. Shared by the
//! integration tests and the `seeded` example that `make test-api` drives.
#![allow(
    dead_code,
    reason = "the example uses only part of this, and the MariaDB handle is held only to be dropped"
)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use store::testing::{MariaDb, at, candle, mongo_url};
use store::{Fence, KlineSource, MongoSink, Timeframe};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The audit instant of the seeded cycle.
pub fn now() -> DateTime<Utc> {
    at(2025, 10, 22, 0, 30, 0)
}

/// The symbols seeded.
pub const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

/// What the seeded audit must find, per (symbol, timeframe): BTCUSDT 1h misses three candles
/// (a high gap), SOLUSDT 1h stopped 2.5 h ago (stale, medium), ETHUSDT 1h is clean, and no
/// symbol was ever extracted into the 1d table.
pub const EXPECTED: [(&str, &str, &str); 6] = [
    ("BTCUSDT", "1h", "critical"),
    ("ETHUSDT", "1h", "ok"),
    ("SOLUSDT", "1h", "warn"),
    ("BTCUSDT", "1d", "not_extracted"),
    ("ETHUSDT", "1d", "not_extracted"),
    ("SOLUSDT", "1d", "not_extracted"),
];

/// The seeded databases; the MariaDB one is dropped with this.
pub struct Seeded {
    /// The extractor's database.
    pub mysql: MariaDb,
    /// The results database.
    pub mongo_url: String,
}

fn tf(s: &str) -> Timeframe {
    s.parse().expect("timeframe")
}

/// Five days of hourly candles per symbol, with the faults of [`EXPECTED`].
pub async fn seed_klines(db: &MariaDb) {
    let h1 = tf("1h");
    let first = at(2025, 10, 17, 0, 0, 0);
    for symbol in SYMBOLS {
        let last = if symbol == "SOLUSDT" {
            at(2025, 10, 21, 21, 0, 0)
        } else {
            at(2025, 10, 21, 23, 0, 0)
        };
        let gap = [
            at(2025, 10, 21, 10, 0, 0),
            at(2025, 10, 21, 11, 0, 0),
            at(2025, 10, 21, 12, 0, 0),
        ];
        let mut rows = Vec::new();
        let mut t = first;
        while t <= last {
            if !(symbol == "BTCUSDT" && gap.contains(&t)) {
                let mut c = candle(symbol, h1, t);
                // Distinct closes per symbol and hour, so analytics has something to say.
                let wiggle = rust_decimal::Decimal::from((t.timestamp() / 3600) % 7);
                let bump = rust_decimal::Decimal::from(symbol.len() as i64 % 3);
                c.close += wiggle + bump;
                c.high = c.high.max(c.close) + rust_decimal::Decimal::ONE;
                rows.push(c);
            }
            t += chrono::Duration::hours(1);
        }
        db.insert(h1, symbol, &rows).await;
    }
}

/// Runs one audit cycle (`dm-auditor once` as a library) at `now`, under `term`.
pub async fn audit(mysql_url: &str, mongo_url: &str, now: DateTime<Utc>, term: i64) {
    let cli = auditor::Cli::try_parse_from([
        "dm-auditor",
        "once",
        "--mysql-uri",
        mysql_url,
        "--mongodb-url",
        mongo_url,
        "--audit-symbols",
        &SYMBOLS.join(","),
        "--audit-timeframes",
        "1h,1d",
        "--now",
        &now.to_rfc3339(),
        "--term",
        &term.to_string(),
    ])
    .expect("auditor arguments");
    let auditor::Command::Once(args) = cli.command else {
        unreachable!("parsed `once`");
    };
    let settings = args.audit.settings().expect("audit settings");
    auditor::once::once(&args, &settings)
        .await
        .expect("audit cycle");
}

/// Runs one analytics cycle at `now` and writes it under term 1.
pub async fn analytics(db: &MariaDb, mongo_url: &str, now: DateTime<Utc>) {
    let settings = analytics::config::Settings {
        symbols: SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
        timeframes: vec![tf("1h")],
        options: analytics::options::Options::default(),
        db_timeout: Duration::from_secs(10),
    };
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(10));
    let sink = MongoSink::connect(mongo_url, "seed", Duration::from_secs(10))
        .await
        .expect("sink");
    let analyses = analytics::reads::analyze_all(&source, &settings, now)
        .await
        .expect("analytics read");
    analytics::write::ensure_indexes(&sink)
        .await
        .expect("indexes");
    let fence = Fence::new("data-manager-analytics", 1, "analytics-0");
    let never_stopped = tokio_util::sync::CancellationToken::new();
    analytics::write::write_analyses(
        &sink,
        &fence,
        &analyses,
        &settings.options,
        now,
        &never_stopped,
    )
    .await
    .expect("analytics write");
    source.close().await;
}

/// Seeds MariaDB, then writes one audit and one analytics cycle to a fresh Mongo database.
pub async fn seeded() -> Seeded {
    let mysql = MariaDb::create().await;
    seed_klines(&mysql).await;
    let mongo_url = mongo_url();
    audit(&mysql.url, &mongo_url, now(), 1).await;
    analytics(&mysql, &mongo_url, now()).await;
    Seeded { mysql, mongo_url }
}

/// The process's Prometheus recorder, installed on first use (one per test process).
fn recorder() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .expect("the only recorder of this process");
            api::metrics::describe();
            handle
        })
        .clone()
}

/// A running dm-api; stops on drop.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serves `mongo_url` on `port` (0: any free port) with `extra` arguments.
    pub async fn start(mongo_url: &str, port: u16, extra: &[&str]) -> Server {
        let mut args = vec!["dm-api", "--mongodb-url", mongo_url];
        args.extend_from_slice(extra);
        for (flag, value) in [
            ("--db-timeout", "2s"),
            ("--query-timeout", "2s"),
            ("--probe-interval", "1s"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        let config = api::Config::try_parse_from(args).expect("dm-api arguments");
        config.validate().expect("valid config");
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = recorder();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            api::server::serve(config, listener, handle, token)
                .await
                .expect("dm-api serves");
        });
        Server {
            port,
            stop,
            task: Some(task),
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
