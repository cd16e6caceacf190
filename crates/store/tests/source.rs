//! The klines source against a real MariaDB loaded with the extractor's DDL.

use std::time::Duration;

use rust_decimal::Decimal;
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
                seen.push(k);
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
        .expect("a row");
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
