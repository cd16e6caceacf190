//! Batched writes on real servers: a cycle over 50 datasets sends a small constant number of
//! write commands per collection (counted with the driver's command monitoring), and leaves
//! exactly the documents one request per document leaves (same ids, same content), through a
//! second cycle that resolves findings.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use mongodb::bson::Document;
use store::testing::commands::{contents, counted_sink};
use store::testing::{MariaDb, at, candle, drop_mongo_database, mongo_url};
use store::{Fence, Kline, KlineSource, MongoSink, Timeframe};
use tokio_util::sync::CancellationToken;

use auditor::config::{Cli, Command, Settings};
use auditor::dataset::DatasetReport;
use auditor::write::{Written, write_reports, write_reports_per_document};

const DATASETS: usize = 50;

fn h1() -> Timeframe {
    "1h".parse().expect("timeframe")
}

fn symbols() -> Vec<String> {
    (0..DATASETS).map(|i| format!("S{i:02}USDT")).collect()
}

/// 24 hourly candles from 2025-10-21 00:00, without the hours in `holes`.
fn day(symbol: &str, holes: &[i64]) -> Vec<Kline> {
    (0..24)
        .filter(|h| !holes.contains(h))
        .map(|h| {
            candle(
                symbol,
                h1(),
                at(2025, 10, 21, 0, 0, 0) + chrono::Duration::hours(h),
            )
        })
        .collect()
}

/// Every symbol has two gaps (so its dataset has findings to write and, later, to resolve).
async fn seed() -> MariaDb {
    let db = MariaDb::create().await;
    for (i, s) in symbols().iter().enumerate() {
        let a = 2 + (i as i64 % 10);
        db.insert(h1(), s, &day(s, &[a, a + 7])).await;
    }
    db
}

fn settings(db: &MariaDb) -> Settings {
    let pairs = symbols().join(",");
    let argv = [
        "dm-auditor",
        "once",
        "--mysql-uri",
        &db.url,
        "--audit-timeframes",
        "1h",
        "--supported-pairs",
        &pairs,
    ];
    match Cli::try_parse_from(argv).expect("args").command {
        Command::Once(a) => a.audit.settings().expect("settings"),
        Command::Run(_) => unreachable!("once"),
    }
}

async fn audit(db: &MariaDb, now: DateTime<Utc>) -> Vec<DatasetReport> {
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(10));
    let reports = auditor::reads::audit_all(
        &source,
        &settings(db),
        now,
        Some(&HashSet::new()),
        &CancellationToken::new(),
    )
    .await
    .expect("audit");
    source.close().await;
    // Read a few at a time, reported in the configured order.
    let order: Vec<&str> = reports.iter().map(|r| r.symbol.as_str()).collect();
    assert_eq!(order, symbols());
    reports
}

fn fence() -> Fence {
    Fence::new("data-manager-auditor", 3, "batching-test")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_over_50_datasets_sends_a_few_write_commands_per_collection() {
    let db = seed().await;
    let now = at(2025, 10, 22, 0, 30, 0);
    let reports = audit(&db, now).await;
    let url = mongo_url();
    let (sink, counter) = counted_sink(&url).await;
    let written = write_reports(
        &sink,
        &fence(),
        &reports,
        "run-1",
        now,
        &CancellationToken::new(),
    )
    .await
    .expect("write");
    // Enough documents that one request per document would be far above the bound.
    assert_eq!(written.health, DATASETS as u64);
    assert!(written.findings >= 2 * DATASETS as u64, "{written:?}");
    let counts = counter.counts();
    // Findings, then their resolution: two commands; health: one; the fence: one per round.
    assert_eq!(counts.get("audit_logs"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("health_metrics"), Some(&1), "{counts:?}");
    assert!(
        counts.get("leader_fence").is_some_and(|n| *n <= 2),
        "{counts:?}"
    );
    assert_eq!(counts.len(), 3, "{counts:?}");
    sink.shutdown().await;
    drop_mongo_database(&url).await;
}

/// Every document of every collection the auditor writes, `written_at` (the server's clock)
/// left out, by `_id`.
async fn stored_documents(url: &str) -> BTreeMap<(String, String), Document> {
    let sink = MongoSink::connect(url, "batching-test", Duration::from_secs(30))
        .await
        .expect("connect");
    let out = contents(&sink, &["audit_logs", "health_metrics", "leader_fence"]).await;
    sink.shutdown().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_writes_leave_the_same_documents_as_one_request_per_document() {
    let db = seed().await;
    let (batched, each) = (mongo_url(), mongo_url());
    let sb = MongoSink::connect(&batched, "t", Duration::from_secs(30))
        .await
        .expect("connect");
    let se = MongoSink::connect(&each, "t", Duration::from_secs(30))
        .await
        .expect("connect");
    let never = CancellationToken::new();
    // Cycle 1 finds the gaps; the missing candles then arrive, so cycle 2 resolves them.
    let first = at(2025, 10, 22, 0, 30, 0);
    let reports = audit(&db, first).await;
    let wb = write_reports(&sb, &fence(), &reports, "run-1", first, &never).await;
    let we = write_reports_per_document(&se, &fence(), &reports, "run-1", first, &never).await;
    assert_eq!(wb.expect("batched"), we.expect("per document"));
    for (i, s) in symbols().iter().enumerate() {
        let a = 2 + (i as i64 % 10);
        let fill: Vec<Kline> = day(s, &[])
            .into_iter()
            .filter(|k| {
                [a, a + 7].contains(&((k.open_time - at(2025, 10, 21, 0, 0, 0)).num_hours()))
            })
            .collect();
        db.insert(h1(), s, &fill).await;
    }
    let second = at(2025, 10, 22, 1, 30, 0);
    let reports = audit(&db, second).await;
    let wb = write_reports(&sb, &fence(), &reports, "run-2", second, &never).await;
    let we = write_reports_per_document(&se, &fence(), &reports, "run-2", second, &never).await;
    let (wb, we): (Written, Written) = (wb.expect("batched"), we.expect("per document"));
    assert_eq!(wb, we);
    assert!(wb.resolved >= 2 * DATASETS as u64, "{wb:?}");

    let (b, e) = (
        stored_documents(&batched).await,
        stored_documents(&each).await,
    );
    assert_eq!(b.len(), e.len());
    assert!(b.len() > 4 * DATASETS, "{}", b.len());
    for (k, doc) in &e {
        assert_eq!(b.get(k), Some(doc), "{k:?}");
    }
    for s in [sb, se] {
        s.shutdown().await;
    }
    drop_mongo_database(&batched).await;
    drop_mongo_database(&each).await;
}

mod trades {
    //! The trades datasets take the same batched path: a few write commands per collection
    //! for 50 datasets, and the documents one request per document leaves, through a cycle
    //! that resolves findings and a repeated cycle (whose health documents already exist).

    use rust_decimal::Decimal;
    use store::trades::{BinanceTrade, insert_trades};

    use auditor::trades::TradesReport;
    use auditor::trades::documents::{write_reports, write_reports_per_document};

    use super::*;

    fn m5() -> Timeframe {
        "5m".parse().expect("5m")
    }

    /// 5m candles from 13:15 to 14:15 (the trades windows of 14:30 and 14:35).
    fn opens() -> Vec<DateTime<Utc>> {
        (0..13)
            .map(|k| at(2025, 10, 21, 13, 15, 0) + chrono::Duration::minutes(5 * k))
            .collect()
    }

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    /// Two trades of 0.5 per candle opening at one of `opens`, ids unique across symbols
    /// (`n` is the symbol's index; the table's trade ids are unique).
    fn trades(n: usize, opens: &[DateTime<Utc>]) -> Vec<BinanceTrade> {
        let base = 1_000 + 100 * n as i64;
        opens
            .iter()
            .flat_map(|o| {
                let slot = (o.timestamp() - at(2025, 10, 21, 13, 15, 0).timestamp()) / 300;
                (0..2).map(move |k| BinanceTrade {
                    trade_id: base + 2 * slot + k,
                    time_ms: o.timestamp_millis() + 7 * (k + 1),
                    price: d("100"),
                    quantity: d("0.5"),
                    quote_quantity: d("50"),
                    is_buyer_maker: k == 0,
                })
            })
            .collect()
    }

    /// Reference candles of two trades each for every symbol; every symbol's trades lack the
    /// 13:40 candle's (a `trades_missing` finding until [`fill`]).
    async fn seed() -> MariaDb {
        let db = MariaDb::create().await;
        let hole = at(2025, 10, 21, 13, 40, 0);
        for (n, s) in symbols().into_iter().enumerate() {
            let rows: Vec<Kline> = opens()
                .into_iter()
                .map(|o| {
                    let mut k = candle(&s, m5(), o);
                    k.number_of_trades = 2;
                    k.volume = d("1");
                    k.quote_asset_volume = d("100");
                    k.taker_buy_base = Decimal::ZERO;
                    k.taker_buy_quote = Decimal::ZERO;
                    k
                })
                .collect();
            db.insert(m5(), &s, &rows).await;
            let some: Vec<_> = opens().into_iter().filter(|o| *o != hole).collect();
            insert_trades(&db.pool, &s, &trades(n, &some), hole)
                .await
                .expect("trades");
        }
        db
    }

    async fn fill(db: &MariaDb) {
        let hole = at(2025, 10, 21, 13, 40, 0);
        for (n, s) in symbols().into_iter().enumerate() {
            insert_trades(&db.pool, &s, &trades(n, &[hole]), hole)
                .await
                .expect("trades");
        }
    }

    async fn audit(db: &MariaDb, now: DateTime<Utc>) -> Vec<TradesReport> {
        let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(10));
        let reports = auditor::trades::reads::audit_all(
            &source,
            &settings(db),
            now,
            &CancellationToken::new(),
        )
        .await
        .expect("audit");
        source.close().await;
        assert_eq!(reports.len(), DATASETS);
        let statuses: Vec<_> = reports
            .iter()
            .map(|r| (r.status, r.error.clone()))
            .collect();
        assert!(reports.iter().all(TradesReport::audited), "{statuses:?}");
        reports
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_trades_cycle_over_50_datasets_sends_a_few_write_commands_per_collection() {
        let db = seed().await;
        let now = at(2025, 10, 21, 14, 30, 0);
        let reports = audit(&db, now).await;
        let url = mongo_url();
        let (sink, counter) = counted_sink(&url).await;
        let never = CancellationToken::new();
        let written = write_reports(&sink, &fence(), &reports, "run-1", now, &never)
            .await
            .expect("write");
        assert_eq!(written.health, DATASETS as u64);
        assert!(written.findings >= DATASETS as u64, "{written:?}");
        let counts = counter.counts();
        // Findings, then their resolution: two commands; health: one; the fence: one per round.
        assert_eq!(counts.get("audit_logs"), Some(&2), "{counts:?}");
        assert_eq!(counts.get("health_metrics"), Some(&1), "{counts:?}");
        assert!(
            counts.get("leader_fence").is_some_and(|n| *n <= 2),
            "{counts:?}"
        );
        assert_eq!(counts.len(), 3, "{counts:?}");
        sink.shutdown().await;
        drop_mongo_database(&url).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_trades_writes_leave_the_same_documents_as_one_request_per_document() {
        let db = seed().await;
        let (batched, each) = (mongo_url(), mongo_url());
        let sb = MongoSink::connect(&batched, "t", Duration::from_secs(30))
            .await
            .expect("connect");
        let se = MongoSink::connect(&each, "t", Duration::from_secs(30))
            .await
            .expect("connect");
        let never = CancellationToken::new();
        let first = at(2025, 10, 21, 14, 30, 0);
        let reports = audit(&db, first).await;
        let wb = write_reports(&sb, &fence(), &reports, "run-1", first, &never).await;
        let we = write_reports_per_document(&se, &fence(), &reports, "run-1", first, &never).await;
        assert_eq!(wb.expect("batched"), we.expect("per document"));
        // The missing trades arrive: the next cycle resolves every dataset's finding; written
        // twice (a retried cycle), its health documents exist the second time.
        fill(&db).await;
        let second = at(2025, 10, 21, 14, 35, 0);
        let reports = audit(&db, second).await;
        for _ in 0..2 {
            let wb = write_reports(&sb, &fence(), &reports, "run-2", second, &never).await;
            let we =
                write_reports_per_document(&se, &fence(), &reports, "run-2", second, &never).await;
            assert_eq!(wb.expect("batched"), we.expect("per document"));
        }
        let (b, e) = (
            stored_documents(&batched).await,
            stored_documents(&each).await,
        );
        let resolved = |c: &BTreeMap<(String, String), Document>| {
            c.values()
                .filter(|d| d.get_datetime("resolved_at").is_ok())
                .count()
        };
        assert!(resolved(&e) >= DATASETS, "{}", resolved(&e));
        assert_eq!(b.len(), e.len());
        assert!(b.len() > 3 * DATASETS, "{}", b.len());
        for (k, doc) in &e {
            assert_eq!(b.get(k), Some(doc), "{k:?}");
        }
        for s in [sb, se] {
            s.shutdown().await;
        }
        drop_mongo_database(&batched).await;
        drop_mongo_database(&each).await;
    }
}
