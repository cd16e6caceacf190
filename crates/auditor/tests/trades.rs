//! The trades audit on real MariaDB (the extractor's DDL, trades inserted the way the extractor
//! inserts them, so the server itself drops and clamps), with exact counts; and its documents
//! on a real Mongo-compatible server.

mod support;

use chrono::{DateTime, Duration, Utc};
use clap::Parser;
use mongodb::bson::{Document, doc};
use rust_decimal::Decimal;
use sqlx::{AssertSqlSafe, Executor};
use store::testing::{MariaDb, at, candle, drop_mongo_database, mongo_url};
use store::trades::{BinanceTrade, insert_trades};
use store::{Kline, Timeframe};

use auditor::config::{Cli, Command, OnceArgs};
use auditor::trades::{TradesReport, TradesStatus};

/// 14:30 with 5m references and L = 900 s: the window is [13:15, 14:15), 12 candles.
fn now() -> DateTime<Utc> {
    at(2025, 10, 21, 14, 30, 0)
}

fn m5() -> Timeframe {
    "5m".parse().expect("5m")
}

fn opens() -> impl Iterator<Item = DateTime<Utc>> {
    (0..12).map(|k| at(2025, 10, 21, 13, 15, 0) + Duration::minutes(5 * k))
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// Reference candles counting `trades` trades of 0.5 at 100.00000001 each.
async fn seed_klines(db: &MariaDb, symbol: &str, trades: i64) {
    let rows: Vec<Kline> = opens()
        .map(|o| {
            let mut k = candle(symbol, m5(), o);
            k.number_of_trades = trades;
            k.volume = d("0.5") * Decimal::from(trades);
            k.quote_asset_volume = d("50.000000005") * Decimal::from(trades);
            k.quote_asset_volume = k.quote_asset_volume.round_dp(8);
            k.taker_buy_base = Decimal::ZERO;
            k.taker_buy_quote = Decimal::ZERO;
            k
        })
        .collect();
    db.insert(m5(), symbol, &rows).await;
}

/// `per_candle` trades per candle with consecutive ids from `first_id`; every `shared`-th
/// trade (if any) lands in the same millisecond as the one before it.
fn binance_trades(per_candle: i64, first_id: i64, shared: Option<i64>) -> Vec<BinanceTrade> {
    let mut out = Vec::new();
    let mut id = first_id;
    for o in opens() {
        let mut ms = o.timestamp_millis();
        for k in 0..per_candle {
            if shared.is_none_or(|s| k % s != s - 1) {
                ms += 7;
            }
            out.push(BinanceTrade {
                trade_id: id,
                time_ms: ms,
                price: d("100.00000001"),
                quantity: d("0.5"),
                quote_quantity: d("50.00000001"),
                is_buyer_maker: k % 2 == 0,
            });
            id += 1;
        }
    }
    out
}

fn args(db: &MariaDb, mongo: Option<&str>, symbols: &str) -> OnceArgs {
    let now = now().to_rfc3339();
    let mut argv = vec![
        "dm-auditor",
        "once",
        "--mysql-uri",
        &db.url,
        "--audit-timeframes",
        "5m",
        "--supported-pairs",
        symbols,
        "--now",
        &now,
    ];
    match mongo {
        Some(url) => argv.extend(["--mongodb-url", url]),
        None => argv.push("--no-write"),
    }
    match Cli::try_parse_from(argv).expect("valid args").command {
        Command::Once(a) => *a,
        Command::Run(_) => unreachable!("once"),
    }
}

async fn audit(db: &MariaDb, symbols: &str) -> Vec<TradesReport> {
    let a = args(db, None, symbols);
    let settings = a.audit.settings().expect("settings");
    auditor::once::once(&a, &settings)
        .await
        .expect("once")
        .trades
}

fn kinds(r: &TradesReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.check.as_str()).collect()
}

#[tokio::test]
async fn a_complete_table_reconciles_exactly() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    let kept = insert_trades(&db.pool, "BTCUSDT", &binance_trades(20, 1_000, None), now())
        .await
        .expect("insert");
    assert_eq!(kept, 240);
    let r = audit(&db, "BTCUSDT").await;
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.status, TradesStatus::Ok, "{:?}", r.findings);
    assert_eq!(
        (
            r.counts.expected_trades,
            r.counts.stored_trades,
            r.counts.missing_trades
        ),
        (240, 240, 0)
    );
    assert_eq!(r.counts.reference_candles, 12);
    assert_eq!(r.counts.volume_mismatch_candles, 0);
    assert_eq!(r.completeness, Some(100.0));
    assert!(r.findings.is_empty());
}

#[tokio::test]
async fn millisecond_collisions_are_measured_to_the_trade() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    // Every 4th trade shares its millisecond: the id collides and INSERT IGNORE drops it.
    let kept = insert_trades(
        &db.pool,
        "BTCUSDT",
        &binance_trades(20, 1_000, Some(4)),
        now(),
    )
    .await
    .expect("insert");
    assert_eq!(kept, 180, "the server dropped 5 of 20 per candle");
    let r = &audit(&db, "BTCUSDT").await[0];
    assert_eq!(r.counts.stored_trades, 180);
    assert_eq!(r.counts.missing_trades, 60);
    assert_eq!(r.counts.short_candles, 12);
    assert_eq!(r.counts.ms_collision_candles, 12);
    assert_eq!(r.completeness, Some(75.0));
    assert_eq!(kinds(r), ["trades_missing", "trade_ms_collision"]);
    assert!(
        r.findings[0]
            .details
            .starts_with("60 of 240 trades missing (25.00%)"),
        "{}",
        r.findings[0].details
    );
    assert_eq!(r.status, TradesStatus::Critical);
}

#[tokio::test]
async fn ids_above_2_31_clamp_and_leave_one_trade() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    let kept = insert_trades(
        &db.pool,
        "BTCUSDT",
        &binance_trades(20, 6_000_000_000, None),
        now(),
    )
    .await
    .expect("insert");
    assert_eq!(kept, 1, "one clamped id, the unique index drops the rest");
    let r = &audit(&db, "BTCUSDT").await[0];
    assert_eq!(r.counts.stored_trades, 1);
    assert_eq!(r.counts.clamped_rows, 1);
    assert_eq!(r.counts.missing_trades, 239);
    assert_eq!(kinds(r), ["trades_missing", "trade_id_clamped"]);
    assert!(
        r.findings[1]
            .details
            .contains("held by BTCUSDT, row BTCUSDT_")
    );
    let c = r.completeness.expect("completeness");
    assert!((c - 100.0 / 240.0).abs() < 1e-9, "{c}");
}

#[tokio::test]
async fn another_symbols_ids_inside_ours_are_collisions() {
    let db = MariaDb::create().await;
    seed_klines(&db, "ETHUSDT", 20).await;
    // BTCUSDT stored ids 1200..=1250 a day earlier; ETHUSDT's trades 1100..1339 come later.
    let mut early = binance_trades(20, 1_200, None);
    early.truncate(51);
    early.iter_mut().for_each(|t| t.time_ms -= 86_400_000);
    insert_trades(&db.pool, "BTCUSDT", &early, now())
        .await
        .expect("insert");
    let kept = insert_trades(&db.pool, "ETHUSDT", &binance_trades(20, 1_100, None), now())
        .await
        .expect("insert");
    assert_eq!(kept, 189);
    let r = &audit(&db, "ETHUSDT").await[0];
    assert_eq!(r.counts.colliding_ids, 51);
    assert_eq!(r.counts.missing_trades, 51);
    assert_eq!(kinds(r), ["trades_missing", "trade_id_collision"]);
    assert!(
        r.findings[1]
            .details
            .starts_with("51 trade ids in this symbol's range [1100, 1339]")
    );
}

#[tokio::test]
async fn an_empty_table_is_not_extracted_and_an_absent_one_missing() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    let r = audit(&db, "BTCUSDT,SOLUSDT").await;
    let st: Vec<_> = r.iter().map(|r| (r.symbol.as_str(), r.status)).collect();
    assert_eq!(
        st,
        [
            ("BTCUSDT", TradesStatus::NotExtracted),
            ("SOLUSDT", TradesStatus::NotExtracted)
        ]
    );
    assert_eq!(kinds(&r[0]), ["not_extracted"]);

    db.pool
        .execute(AssertSqlSafe("DROP TABLE trades".to_owned()))
        .await
        .expect("drop");
    let r = audit(&db, "BTCUSDT").await;
    assert_eq!(r[0].status, TradesStatus::TableMissing);
    assert_eq!(r[0].findings[0].details, "table trades does not exist");
    // The klines datasets are audited as before.
    let a = args(&db, None, "BTCUSDT");
    let s = a.audit.settings().expect("settings");
    let once = auditor::once::once(&a, &s).await.expect("once");
    assert_eq!(once.reports.len(), 1);
}

#[tokio::test]
async fn an_undecodable_row_is_counted_and_the_rest_audited() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    insert_trades(&db.pool, "BTCUSDT", &binance_trades(20, 1_000, None), now())
        .await
        .expect("insert");
    // A drifted schema lets a NULL quantity in, inside the window.
    for sql in [
        "ALTER TABLE trades MODIFY quantity DECIMAL(20,8) NULL",
        "INSERT INTO trades (id, symbol, `timestamp`, trade_id, price, quantity, quote_quantity, \
         is_buyer_maker, trade_time, extracted_at, extractor_version, source) VALUES \
         ('BTCUSDT_1761052500001', 'BTCUSDT', '2025-10-21 13:15:00', 5, 1, NULL, 1, 0, \
          '2025-10-21 13:15:00', '2025-10-21 13:20:00', '1', 's')",
    ] {
        db.pool
            .execute(AssertSqlSafe(sql.to_owned()))
            .await
            .expect("statement");
    }
    let r = &audit(&db, "BTCUSDT").await[0];
    assert_eq!(r.counts.undecodable_rows, 1);
    assert_eq!(r.counts.stored_trades, 240);
    assert_eq!(r.counts.missing_trades, 0);
    assert_eq!(kinds(r), ["undecodable_trade"]);
    assert!(
        r.findings[0]
            .details
            .contains("id BTCUSDT_1761052500001, column quantity"),
        "{}",
        r.findings[0].details
    );
    assert_eq!(r.status, TradesStatus::Critical);
}

/// A trades read that fails while the server still answers is that dataset's `read_error`:
/// the cycle succeeds and the klines datasets are audited as usual.
#[tokio::test]
async fn a_blocked_trades_table_is_its_datasets_read_error_and_nothing_else() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    insert_trades(&db.pool, "BTCUSDT", &binance_trades(20, 1_000, None), now())
        .await
        .expect("insert");
    // Another session write-locks `trades`: every read of it blocks past DB_TIMEOUT while the
    // server and the klines tables still answer.
    let mut locker = db.pool.acquire().await.expect("connection");
    locker
        .execute("LOCK TABLES trades WRITE")
        .await
        .expect("lock");
    let mut a = args(&db, None, "BTCUSDT");
    a.audit.store.db_timeout = runtime::config::Seconds(std::time::Duration::from_secs(1));
    let settings = a.audit.settings().expect("settings");
    let once = auditor::once::once(&a, &settings)
        .await
        .expect("a trades read error must not fail the cycle");
    locker.execute("UNLOCK TABLES").await.expect("unlock");
    let [r] = once.trades.as_slice() else {
        panic!("one trades dataset: {:?}", once.trades)
    };
    assert_eq!(r.status, TradesStatus::ReadError);
    assert_eq!(kinds(r), ["read_error"]);
    assert!(
        r.findings[0].details.contains("timed out"),
        "{}",
        r.findings[0].details
    );
    assert_eq!(r.completeness, None);
    let [k] = once.reports.as_slice() else {
        panic!("one klines dataset")
    };
    assert_eq!(k.status, auditor::dataset::Status::Ok, "{:?}", k.findings);
}

#[tokio::test]
async fn trades_datasets_are_written_fenced_next_to_the_klines() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    insert_trades(
        &db.pool,
        "BTCUSDT",
        &binance_trades(20, 1_000, Some(4)),
        now(),
    )
    .await
    .expect("insert");
    let url = mongo_url();
    let a = args(&db, Some(&url), "BTCUSDT");
    let settings = a.audit.settings().expect("settings");
    let once = auditor::once::once(&a, &settings).await.expect("once");
    let w = once.written.expect("written");
    assert_eq!(w.health, 2, "one klines and one trades dataset");
    let client = mongodb::Client::with_uri_str(&url).await.expect("client");
    let db_m = client.database(&store::mongo_url::database_name(&url));
    let health = db_m
        .collection::<Document>("health_metrics")
        .find_one(doc! { "_id": "BTCUSDT|trades|2025-10-21T14:30:00Z" })
        .await
        .expect("find")
        .expect("health document");
    assert_eq!(health.get_str("dataset_id").ok(), Some("trades_BTCUSDT"));
    assert_eq!(health.get_i64("missing_trades").ok(), Some(60));
    assert_eq!(health.get_f64("completeness").ok(), Some(75.0));
    assert_eq!(health.get_i64("leader_term").ok(), Some(0));
    let finding = db_m
        .collection::<Document>("audit_logs")
        .find_one(doc! { "_id": "BTCUSDT|trades|trade_ms_collision" })
        .await
        .expect("find")
        .expect("finding");
    assert_eq!(finding.get_str("severity").ok(), Some("medium"));
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn once_json_lists_the_trades_datasets() {
    let db = MariaDb::create().await;
    seed_klines(&db, "BTCUSDT", 20).await;
    insert_trades(
        &db.pool,
        "BTCUSDT",
        &binance_trades(20, 1_000, Some(4)),
        now(),
    )
    .await
    .expect("insert");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dm-auditor"))
        .args(["once", "--json", "--no-write", "--now", &now().to_rfc3339()])
        .env_clear()
        .env("MYSQL_URI", &db.url)
        .env("SUPPORTED_PAIRS", "BTCUSDT,SOLUSDT")
        .env("AUDIT_TIMEFRAMES", "5m")
        .output()
        .expect("run dm-auditor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let trades = v["trades"].as_array().expect("trades");
    assert_eq!(trades.len(), 2);
    assert_eq!(trades[0]["dataset_id"], "trades_BTCUSDT");
    assert_eq!(trades[0]["status"], "critical");
    assert_eq!(trades[0]["completeness"], 75.0);
    assert_eq!(trades[0]["counts"]["missing_trades"], 60);
    assert_eq!(trades[0]["findings"][1]["check"], "trade_ms_collision");
    assert_eq!(trades[1]["status"], "not_extracted");
    assert_eq!(v["datasets"].as_array().map(Vec::len), Some(2));
}

mod fencing {
    //! The trades datasets' writes take the klines datasets' fenced path: the fence re-claimed
    //! per round of commands, nothing sent past the deadline or after the term ended.

    use store::testing::{at, drop_mongo_database, mongo_url};
    use store::{Fence, SinkError};
    use tokio_util::sync::CancellationToken;

    use crate::support::fencing::{
        CONSULTATIONS_UNTIL_THE_SECOND_CLAIM, LEASE, expired_fence, one_statement_per_command,
        sink, stale_fence_overtaken_at_the_second_round, terms,
    };
    use auditor::trades::documents::{write_reports, write_reports_with};
    use auditor::trades::reconcile::TradesParams;
    use auditor::trades::{TradesReport, TradesStatus};
    use auditor::write::WriteError;

    /// The sink's application name, also the competing replica's.
    const APP: &str = "trades-fencing-test";

    fn report(symbol: &str) -> TradesReport {
        let p = TradesParams {
            now: at(2025, 10, 21, 14, 30, 0),
            window: 3_600,
            reference: "5m".parse().expect("tf"),
            max_lag: 900,
        };
        TradesReport::informational(symbol, p, TradesStatus::NotExtracted, "none".into())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_term_stops_at_its_next_trades_batch_once_a_newer_term_claimed_the_fence() {
        let url = mongo_url();
        let s = sink(&url, APP).await;
        // Term 5 claims the fence between term 4's first and second rounds.
        let (stale, calls) =
            stale_fence_overtaken_at_the_second_round(&url, APP, at(2025, 10, 21, 14, 31, 0));
        let reports = [report("AAAUSDT"), report("BBBUSDT")];
        let now = at(2025, 10, 21, 14, 30, 0);
        let never = CancellationToken::new();
        let one_each = one_statement_per_command();
        let err = write_reports_with(&s, &stale, &reports, "run", now, &never, one_each)
            .await
            .expect_err("fenced at the second batch");
        assert!(
            matches!(&err, WriteError::Sink(e) if e.is_fenced()),
            "{err}"
        );
        assert_eq!(terms(&s, "audit_logs").await, [("AAAUSDT".into(), 4)]);
        assert_eq!(terms(&s, "health_metrics").await, [("AAAUSDT".into(), 4)]);
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            CONSULTATIONS_UNTIL_THE_SECOND_CLAIM
        );
        drop_mongo_database(&url).await;
    }

    #[tokio::test]
    async fn no_trades_write_past_the_deadline_or_after_the_term_ended() {
        let url = mongo_url();
        let s = sink(&url, APP).await;
        let now = at(2025, 10, 21, 14, 30, 0);
        let reports = [report("AAAUSDT")];
        let expired = expired_fence();
        let err = write_reports(
            &s,
            &expired,
            &reports,
            "run",
            now,
            &CancellationToken::new(),
        )
        .await
        .expect_err("deadline passed");
        assert!(
            matches!(err, WriteError::Sink(SinkError::DeadlinePassed { .. })),
            "{err}"
        );
        let ended = CancellationToken::new();
        ended.cancel();
        let err = write_reports(&s, &Fence::new(LEASE, 4, "x"), &reports, "run", now, &ended)
            .await
            .expect_err("term ended");
        assert!(matches!(err, WriteError::Stopped), "{err}");
        assert!(terms(&s, "audit_logs").await.is_empty());
        assert!(terms(&s, "leader_fence").await.is_empty());
        drop_mongo_database(&url).await;
    }
}
