//! Batched writes on real servers: an analytics cycle sends one write command per collection
//! (plus the fence claims), counted with the driver's command monitoring, and leaves exactly
//! the documents one request per document leaves (same ids, same content).

use std::time::Duration;

use analytics::config::Settings;
use analytics::golden::{series_a, series_b};
use analytics::options::Options;
use analytics::reads::analyze_all;
use analytics::write::{write_analyses, write_analyses_per_document};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use store::testing::commands::{contents, counted_sink};
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use store::{Fence, Kline, KlineSource, MongoSink, Timeframe};
use tokio_util::sync::CancellationToken;

const SYMBOLS: usize = 25;

fn h1() -> Timeframe {
    "1h".parse().expect("timeframe")
}

fn dec(x: f64) -> Decimal {
    format!("{x:.8}").parse().expect("decimal")
}

fn symbol(i: usize) -> String {
    format!("S{i:02}USDT")
}

/// 25 symbols of 720 hourly candles up to the current hour (golden series, alternately A/B,
/// scaled per symbol so no two are the same).
async fn seeded() -> MariaDb {
    let db = MariaDb::create().await;
    let hour = DateTime::from_timestamp(Utc::now().timestamp() / 3600 * 3600, 0).expect("hour");
    for i in 0..SYMBOLS {
        let g = if i % 2 == 0 {
            series_a(720)
        } else {
            series_b(720)
        };
        let f = 1.0 + i as f64 / 100.0;
        let rows: Vec<Kline> = g
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let open = hour - chrono::Duration::hours(719 - j as i64);
                let mut k = candle(&symbol(i), h1(), open);
                (k.open, k.high, k.low, k.close, k.volume) = (
                    dec(c.open * f),
                    dec(c.high * f),
                    dec(c.low * f),
                    dec(c.close * f),
                    dec(c.volume),
                );
                k
            })
            .collect();
        db.insert(h1(), &symbol(i), &rows).await;
    }
    db
}

fn settings() -> Settings {
    Settings {
        symbols: (0..SYMBOLS).map(symbol).collect(),
        timeframes: vec![h1()],
        options: Options::default(),
        db_timeout: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_cycle_sends_one_command_per_collection_and_writes_what_per_document_writes() {
    let db = seeded().await;
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(30));
    let now = Utc::now();
    let analyses = analyze_all(&source, &settings(), now).await.expect("reads");
    source.close().await;
    let fence = Fence::new("data-manager-analytics", 2, "test");
    let never = CancellationToken::new();
    let (batched, each) = (mongo_url(), mongo_url());
    let (sb, counter) = counted_sink(&batched).await;
    let se = MongoSink::connect(&each, "t", Duration::from_secs(30))
        .await
        .expect("connect");
    let opts = Options::default();
    let cb = write_analyses(&sb, &fence, &analyses, &opts, now, &never)
        .await
        .expect("batched");
    let ce = write_analyses_per_document(&se, &fence, &analyses, &opts, now, &never)
        .await
        .expect("per document");
    assert_eq!(cb, ce);
    let total: u64 = cb.values().sum();
    assert!(total >= 5 * SYMBOLS as u64, "{cb:?}");

    let counts = counter.counts();
    let mut colls: Vec<String> = counts.keys().cloned().collect();
    colls.retain(|c| c != "leader_fence");
    assert!(colls.len() >= 5, "{counts:?}");
    for c in &colls {
        assert_eq!(counts.get(c), Some(&1), "{c}: {counts:?}");
    }
    // One claim per round of at most 4 collections.
    assert!(
        counts
            .get("leader_fence")
            .is_some_and(|n| *n <= colls.len().div_ceil(4)),
        "{counts:?}"
    );

    colls.push("leader_fence".into());
    let (b, e) = (contents(&sb, &colls).await, contents(&se, &colls).await);
    assert_eq!(b.len() as u64, total + 1);
    assert_eq!(b, e);
    for s in [sb, se] {
        s.shutdown().await;
    }
    drop_mongo_database(&batched).await;
    drop_mongo_database(&each).await;
}
