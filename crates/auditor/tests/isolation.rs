//! One bad dataset never stops a cycle: rows that do not decode, a table lacking a column, a
//! read that fails and rows from the future each affect their own dataset, on real MariaDB.

use chrono::{DateTime, Utc};
use clap::Parser;
use sqlx::{AssertSqlSafe, Executor};
use store::testing::{MariaDb, at, candle};
use store::{Kline, Timeframe};

use auditor::config::{Cli, Command};
use auditor::dataset::{DatasetReport, Status};
use auditor::finding::{Check, Severity};

fn tf(s: &str) -> Timeframe {
    s.parse().expect("timeframe")
}

fn series(symbol: &str, t: Timeframe, from: DateTime<Utc>, n: i64) -> Vec<Kline> {
    (0..n)
        .map(|i| candle(symbol, t, from + chrono::Duration::seconds(i * t.seconds())))
        .collect()
}

async fn exec(db: &MariaDb, statements: &[String]) {
    let mut conn = db.pool.acquire().await.expect("connection");
    for sql in statements {
        conn.execute(AssertSqlSafe(sql.clone())).await.expect(sql);
    }
}

async fn once(db: &MariaDb, now: &str, extra: &[&str]) -> Vec<DatasetReport> {
    let mut argv = vec![
        "dm-auditor",
        "once",
        "--no-write",
        "--mysql-uri",
        &db.url,
        "--now",
        now,
    ];
    argv.extend(extra);
    let a = match Cli::try_parse_from(argv).expect("args").command {
        Command::Once(a) => *a,
        Command::Run(_) => unreachable!("once"),
    };
    let settings = a.audit.settings().expect("settings");
    auditor::once::once(&a, &settings)
        .await
        .expect("a bad dataset must not fail the cycle")
        .reports
}

fn find<'a>(reports: &'a [DatasetReport], symbol: &str, t: &str) -> &'a DatasetReport {
    reports
        .iter()
        .find(|r| r.symbol == symbol && r.timeframe.label() == t)
        .unwrap_or_else(|| panic!("no report for {symbol} {t}"))
}

/// BTCUSDT and ETHUSDT with a day of 1h rows and BTCUSDT with an hour of 5m rows, broken:
/// BTCUSDT 1h's 11th row has a NULL close and the 12th a zero `extracted_at`, ETHUSDT 1h has two
/// rows a day after the audit instant, and `klines_m5` lacks `quote_asset_volume`. Returns
/// BTCUSDT's 1h rows.
async fn seed_broken_datasets(db: &MariaDb) -> Vec<Kline> {
    let (h1, m5) = (tf("1h"), tf("5m"));
    let btc = series("BTCUSDT", h1, at(2025, 10, 21, 0, 0, 0), 24);
    db.insert(h1, "BTCUSDT", &btc).await;
    db.insert(
        h1,
        "ETHUSDT",
        &series("ETHUSDT", h1, at(2025, 10, 21, 0, 0, 0), 24),
    )
    .await;
    // Two rows opening a day after the audit instant.
    db.insert(
        h1,
        "ETHUSDT",
        &series("ETHUSDT", h1, at(2025, 10, 23, 0, 0, 0), 2),
    )
    .await;
    db.insert(
        m5,
        "BTCUSDT",
        &series("BTCUSDT", m5, at(2025, 10, 21, 20, 0, 0), 12),
    )
    .await;
    exec(
        db,
        &[
            "ALTER TABLE klines_h1 MODIFY close_price DECIMAL(20,8) NULL".into(),
            "SET SESSION sql_mode = ''".into(),
            format!(
                "UPDATE klines_h1 SET close_price = NULL WHERE id = '{}'",
                btc[10].id
            ),
            format!(
                "UPDATE klines_h1 SET extracted_at = '0000-00-00 00:00:00' WHERE id = '{}'",
                btc[11].id
            ),
            "ALTER TABLE klines_m5 DROP COLUMN quote_asset_volume".into(),
        ],
    )
    .await;
    btc
}

/// The table lacking a column is a schema mismatch of its datasets only, without scores.
fn assert_the_missing_column_is_a_schema_mismatch(reports: &[DatasetReport]) {
    let m5_btc = find(reports, "BTCUSDT", "5m");
    assert_eq!(m5_btc.status, Status::SchemaMismatch);
    assert_eq!(m5_btc.findings[0].check, Check::SchemaMismatch);
    assert!(
        m5_btc.findings[0].details.contains("quote_asset_volume"),
        "{}",
        m5_btc.findings[0].details
    );
    assert!(m5_btc.scores.is_none());
    assert_eq!(
        find(reports, "ETHUSDT", "5m").status,
        Status::SchemaMismatch
    );
}

/// The two undecodable rows are high findings of BTCUSDT 1h naming their column and row, fill
/// no slot (one gap of two candles), and make the dataset critical.
fn assert_the_undecodable_rows_stay_in_their_dataset(reports: &[DatasetReport], btc: &[Kline]) {
    let bad = find(reports, "BTCUSDT", "1h");
    let undecodable: Vec<_> = bad
        .findings
        .iter()
        .filter(|f| f.check == Check::UndecodableRow)
        .collect();
    assert_eq!(undecodable.len(), 2);
    assert_eq!(undecodable[0].severity, Severity::High);
    assert_eq!(undecodable[0].start, Some(btc[10].open_time));
    assert!(undecodable[0].details.contains("close_price"));
    assert!(undecodable[0].details.contains(&btc[10].id));
    assert!(undecodable[1].details.contains("extracted_at"));
    assert_eq!(bad.counts.invalid_rows, 2);
    assert_eq!(bad.counts.rows_in_window, 23, "01:00 … 23:00");
    // The two rows fill no slot: one gap of two candles.
    let gaps: Vec<_> = bad
        .findings
        .iter()
        .filter(|f| f.check == Check::Gap)
        .map(|f| (f.start, f.missing_candles))
        .collect();
    assert_eq!(gaps, [(Some(btc[10].open_time), Some(2))]);
    assert_eq!(bad.status, Status::Critical);
}

/// The future rows are one high finding of ETHUSDT 1h and are not counted in its window.
fn assert_the_future_rows_stay_in_their_dataset(reports: &[DatasetReport]) {
    let eth = find(reports, "ETHUSDT", "1h");
    let future: Vec<_> = eth
        .findings
        .iter()
        .filter(|f| f.check == Check::FutureRow)
        .collect();
    assert_eq!(future.len(), 1);
    assert_eq!(future[0].severity, Severity::High);
    assert_eq!(future[0].start, Some(at(2025, 10, 23, 0, 0, 0)));
    assert!(
        future[0].details.starts_with("2 rows"),
        "{}",
        future[0].details
    );
    assert_eq!(
        eth.counts.rows_in_window, 23,
        "future rows are not in the window"
    );
    assert_eq!(eth.counts.invalid_rows, 0);
}

#[tokio::test]
async fn undecodable_rows_a_missing_column_and_future_rows_stay_in_their_dataset() {
    let db = MariaDb::create().await;
    let btc = seed_broken_datasets(&db).await;
    let reports = once(
        &db,
        "2025-10-22T00:30:00Z",
        &[
            "--audit-timeframes",
            "5m,1h",
            "--supported-pairs",
            "BTCUSDT,ETHUSDT",
        ],
    )
    .await;
    assert_eq!(reports.len(), 4);
    assert_the_missing_column_is_a_schema_mismatch(&reports);
    assert_the_undecodable_rows_stay_in_their_dataset(&reports, &btc);
    assert_the_future_rows_stay_in_their_dataset(&reports);
}

#[tokio::test]
async fn a_dataset_whose_reads_fail_is_read_error_and_the_others_are_audited() {
    let db = MariaDb::create().await;
    let (h1, m30) = (tf("1h"), tf("30m"));
    db.insert(
        h1,
        "BTCUSDT",
        &series("BTCUSDT", h1, at(2025, 10, 21, 0, 0, 0), 24),
    )
    .await;
    db.insert(
        m30,
        "BTCUSDT",
        &series("BTCUSDT", m30, at(2025, 10, 21, 0, 0, 0), 48),
    )
    .await;
    // Another session write-locks klines_m30: every read of it blocks past DB_TIMEOUT while
    // the server (and every other table) still answers.
    let mut locker = db.pool.acquire().await.expect("connection");
    locker
        .execute("LOCK TABLES klines_m30 WRITE")
        .await
        .expect("lock");
    let reports = once(
        &db,
        "2025-10-22T00:30:00Z",
        &[
            "--audit-timeframes",
            "30m,1h",
            "--supported-pairs",
            "BTCUSDT",
            "--db-timeout",
            "1s",
        ],
    )
    .await;
    locker.execute("UNLOCK TABLES").await.expect("unlock");
    let failed = find(&reports, "BTCUSDT", "30m");
    assert_eq!(failed.status, Status::ReadError);
    assert_eq!(failed.findings[0].check, Check::ReadError);
    assert!(
        failed.findings[0].details.contains("timed out"),
        "{}",
        failed.findings[0].details
    );
    let ok = find(&reports, "BTCUSDT", "1h");
    assert_eq!(ok.status, Status::Ok, "{:?}", ok.findings);
    assert_eq!(ok.counts.rows_in_window, 23);
}
