//! The klines source against a real MariaDB loaded with the extractor's DDL.

use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::{AssertSqlSafe, Executor};
use store::testing::{MariaDb, at, candle};
use store::{KlineSource, SourceError, Timeframe};

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn source(db: &MariaDb) -> KlineSource {
    KlineSource::connect_lazy(db.options(), Duration::from_secs(5))
}

#[tokio::test]
async fn scan_reads_the_half_open_window_in_order_with_exact_decimals() {
    let db = MariaDb::create().await;
    let tf = h1();
    let mut rows: Vec<_> = (0..6)
        .map(|h| candle("BTCUSDT", tf, at(2025, 10, 21, h, 0, 0)))
        .collect();
    rows[2].high = "12345678901.12345678".parse().expect("decimal");
    rows.reverse(); // insertion order must not matter
    db.insert(tf, "BTCUSDT", &rows).await;
    db.insert(
        tf,
        "ETHUSDT",
        &[candle("ETHUSDT", tf, at(2025, 10, 21, 2, 0, 0))],
    )
    .await;

    let src = source(&db);
    let mut seen = Vec::new();
    let n = src
        .scan(
            tf,
            "BTCUSDT",
            at(2025, 10, 21, 1, 0, 0),
            at(2025, 10, 21, 4, 0, 0),
            |k| {
                seen.push(k.expect("decodes"));
            },
        )
        .await
        .expect("scan");
    assert_eq!(n, 3);
    let opens: Vec<_> = seen.iter().map(|k| k.open_time).collect();
    assert_eq!(
        opens,
        [
            at(2025, 10, 21, 1, 0, 0),
            at(2025, 10, 21, 2, 0, 0),
            at(2025, 10, 21, 3, 0, 0)
        ]
    );
    assert_eq!(
        seen[1].high,
        "12345678901.12345678".parse::<Decimal>().expect("decimal")
    );
    // Naive DATETIMEs are read as UTC, unchanged.
    assert_eq!(seen[0].close_time, at(2025, 10, 21, 1, 59, 59));
    assert_eq!(seen[0].extracted_at, at(2025, 10, 21, 2, 10, 0));
    assert_eq!(
        seen[0].id,
        format!("BTCUSDT_{}", at(2025, 10, 21, 1, 0, 0).timestamp_millis())
    );
    assert_eq!(seen[0].interval, "1h");
    assert_eq!(seen[0].number_of_trades, 42);

    let before = src
        .newest_before(tf, "BTCUSDT", at(2025, 10, 21, 4, 0, 0))
        .await
        .expect("newest_before")
        .expect("a row")
        .expect("decodes");
    assert_eq!(before.open_time, at(2025, 10, 21, 3, 0, 0));
    assert!(
        src.newest_before(tf, "BTCUSDT", at(2025, 10, 21, 0, 0, 0))
            .await
            .expect("query")
            .is_none()
    );
}

#[tokio::test]
async fn existence_checks_never_create_a_missing_table() {
    let db = MariaDb::create().await;
    let src = source(&db);
    let m1: Timeframe = "1m".parse().expect("1m");
    assert!(src.table_exists(h1()).await.expect("query"));
    assert!(!src.table_exists(m1).await.expect("query"));
    assert!(
        !src.table_exists(m1).await.expect("query"),
        "still missing after the check"
    );

    db.insert(
        h1(),
        "ETHUSDT",
        &[candle("ETHUSDT", h1(), at(2025, 1, 1, 0, 0, 0))],
    )
    .await;
    db.insert(
        h1(),
        "BTCUSDT",
        &[candle("BTCUSDT", h1(), at(2025, 1, 1, 0, 0, 0))],
    )
    .await;
    assert!(src.symbol_exists(h1(), "BTCUSDT").await.expect("query"));
    assert!(!src.symbol_exists(h1(), "SOLUSDT").await.expect("query"));
    assert_eq!(
        src.symbols(h1()).await.expect("query"),
        ["BTCUSDT", "ETHUSDT"]
    );
}

#[tokio::test]
async fn unreachable_server_fails_fast_without_leaking_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let uri = store::mysql_url::MysqlUri::parse(&format!(
        "mysql+pymysql://auditor:s3cr3t-pw@127.0.0.1:{port}/petrosa_crypto"
    ))
    .expect("uri");
    let src = KlineSource::connect_lazy(uri.to_options(), Duration::from_secs(2));
    let started = std::time::Instant::now();
    let err = src.ping().await.expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        err,
        SourceError::Query { .. } | SourceError::Timeout { .. }
    ));
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cr3t-pw"), "{text}");
}

/// Runs statements on one connection (session settings apply to the ones after them).
async fn exec(db: &MariaDb, statements: &[String]) {
    let mut conn = db.pool.acquire().await.expect("connection");
    for sql in statements {
        conn.execute(AssertSqlSafe(sql.clone())).await.expect(sql);
    }
}

#[tokio::test]
async fn null_and_zero_date_rows_are_reported_by_column_and_the_scan_goes_on() {
    let db = MariaDb::create().await;
    let tf = h1();
    let rows: Vec<_> = (0..4)
        .map(|h| candle("BTCUSDT", tf, at(2025, 10, 21, h, 0, 0)))
        .collect();
    db.insert(tf, "BTCUSDT", &rows).await;
    exec(
        &db,
        &[
            "ALTER TABLE klines_h1 MODIFY close_price DECIMAL(20,8) NULL".into(),
            "SET SESSION sql_mode = ''".into(),
            format!(
                "UPDATE klines_h1 SET close_price = NULL WHERE id = '{}'",
                rows[1].id
            ),
            format!(
                "UPDATE klines_h1 SET extracted_at = '0000-00-00 00:00:00' WHERE id = '{}'",
                rows[2].id
            ),
        ],
    )
    .await;
    let src = source(&db);
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let n = src
        .scan(
            tf,
            "BTCUSDT",
            at(2025, 10, 21, 0, 0, 0),
            at(2025, 10, 22, 0, 0, 0),
            |r| match r {
                Ok(k) => good.push(k.id),
                Err(u) => bad.push((u.id, u.column, u.timestamp)),
            },
        )
        .await
        .expect("the scan survives bad rows");
    assert_eq!(n, 4);
    assert_eq!(good, [rows[0].id.clone(), rows[3].id.clone()]);
    assert_eq!(
        bad,
        [
            (
                Some(rows[1].id.clone()),
                "close_price",
                Some(rows[1].timestamp)
            ),
            (
                Some(rows[2].id.clone()),
                "extracted_at",
                Some(rows[2].timestamp)
            ),
        ]
    );
    let prev = src
        .newest_before(tf, "BTCUSDT", at(2025, 10, 21, 3, 0, 0))
        .await
        .expect("query")
        .expect("a row");
    assert_eq!(prev.expect_err("undecodable").column, "extracted_at");
}

#[tokio::test]
async fn missing_columns_are_named_and_future_rows_counted() {
    let db = MariaDb::create().await;
    let src = source(&db);
    let m5: Timeframe = "5m".parse().expect("5m");
    assert_eq!(
        src.missing_columns(m5).await.expect("query"),
        Vec::<&str>::new()
    );
    exec(
        &db,
        &["ALTER TABLE klines_h1 DROP COLUMN quote_asset_volume".into()],
    )
    .await;
    assert_eq!(
        src.missing_columns(h1()).await.expect("query"),
        ["quote_asset_volume"]
    );

    let rows: Vec<_> = (3..6)
        .map(|h| candle("ETHUSDT", m5, at(2025, 10, 21, h, 0, 0)))
        .collect();
    db.insert(m5, "ETHUSDT", &rows).await;
    let future = src
        .future_rows(m5, "ETHUSDT", at(2025, 10, 21, 4, 0, 0))
        .await
        .expect("query")
        .expect("two rows");
    assert_eq!((future.count, future.first), (2, at(2025, 10, 21, 4, 0, 0)));
    assert!(
        src.future_rows(m5, "ETHUSDT", at(2025, 10, 21, 6, 0, 0))
            .await
            .expect("query")
            .is_none()
    );
}
