//! `make bench-scale` (analytics half): one analytics cycle at 50, 500 and 2,000 symbols (90
//! days of 1h candles each, the golden series scaled per symbol), its read-and-compute phase
//! against its write phase, with Mongo direct and through a 10 ms round trip (testkit's
//! latency proxy), each on a freshly started server; then the same cycle written again into
//! the direct database (every key exists: what 3 of 4 cycles an hour write at the default 15-minute
//! interval). Needs the local MariaDB and `.venv-mongo` (`make services`).
//!
//! `cargo bench -p analytics --bench scale` (`SCALE_SYMBOLS=50,500` for fewer sizes;
//! `DM_TEST_MONGOD=<path to secantusd-rs>` for the faster server, as `make bench-scale-rs`).

use std::time::{Duration, Instant};

use analytics::config::Settings;
use analytics::golden::{series_a, series_b};
use analytics::metric::{Kind, Skip};
use analytics::options::Options;
use analytics::reads::analyze_all;
use analytics::write::{ensure_indexes, write_analyses};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use store::testing::commands::{describe, timed_sink};
use store::testing::fresh::FreshMongo;
use store::testing::{MariaDb, MongoInstance, candle, sizes_from_env};
use store::{Fence, Kline, KlineSource, Timeframe};
use tokio_util::sync::CancellationToken;

/// 90 days of hourly candles.
const CANDLES: usize = 90 * 24;
/// 10 ms round trip.
const ONE_WAY: Duration = Duration::from_millis(5);

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn symbol(i: usize) -> String {
    format!("S{i:03}USDT")
}

fn dec(x: f64) -> Decimal {
    format!("{x:.8}").parse().expect("decimal")
}

/// One symbol's candles up to `hour`: series A or B, scaled so no two symbols are the same.
fn rows(i: usize, hour: DateTime<Utc>) -> Vec<Kline> {
    let g = if i.is_multiple_of(2) {
        series_a(CANDLES)
    } else {
        series_b(CANDLES)
    };
    let f = 1.0 + i as f64 / 1000.0;
    g.iter()
        .enumerate()
        .map(|(j, c)| {
            let open = hour - chrono::Duration::hours((CANDLES - 1 - j) as i64);
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
        .collect()
}

/// Writes `analyses` into `url`; returns the time taken and the documents written.
async fn write(
    url: &str,
    analyses: &[analytics::analysis::Analysis],
    at: DateTime<Utc>,
) -> (f64, u64) {
    let (sink, timer) = timed_sink(url, Duration::from_secs(600)).await;
    ensure_indexes(&sink).await.expect("indexes");
    timer.take();
    let fence = Fence::new("data-manager-analytics", 1, "bench");
    let t = Instant::now();
    let counts = write_analyses(
        &sink,
        &fence,
        analyses,
        &Options::default(),
        at,
        &CancellationToken::new(),
    )
    .await
    .expect("write");
    let took = t.elapsed().as_secs_f64();
    println!("write {took:.2} s: {}", describe(&timer.take()));
    sink.shutdown().await;
    (took, counts.values().sum())
}

/// One cycle over the first `n` symbols: read and compute, then its writes into a fresh
/// server direct, into a fresh one through the proxy, and again into the direct one (every key
/// exists), one table row each.
async fn one_size(source: &KlineSource, n: usize, now: DateTime<Utc>) {
    let settings = Settings {
        symbols: (0..n).map(symbol).collect(),
        timeframes: vec![h1()],
        options: Options::default(),
        db_timeout: Duration::from_secs(600),
    };
    // Warm MariaDB's buffer pool once.
    analyze_all(source, &settings, now).await.expect("warm-up");
    let t = Instant::now();
    let analyses = analyze_all(source, &settings, now).await.expect("cycle");
    let compute = t.elapsed().as_secs_f64();
    let too_large: u64 = analyses
        .iter()
        .filter_map(|a| {
            a.skipped()
                .get(&(Kind::Correlation, Skip::TooLarge))
                .copied()
        })
        .sum();
    if too_large > 0 {
        println!("{n} symbols: the correlation matrix is past the document limit, not written");
    }
    let direct = FreshMongo::start(None).await;
    let mut rows_out = vec![("direct", write(&direct.url, &analyses, now).await)];
    {
        let proxied = FreshMongo::start(Some(ONE_WAY)).await;
        rows_out.push(("10 ms RTT", write(&proxied.url, &analyses, now).await));
    }
    rows_out.push((
        "direct, keys exist",
        write(&direct.url, &analyses, now).await,
    ));
    for (mongo, (w, docs)) in rows_out {
        println!(
            "| {n} | {mongo} | {compute:.2} s | {w:.2} s | {:.2}× | {docs} |",
            w / compute
        );
    }
}

#[tokio::main]
async fn main() {
    let sizes = sizes_from_env("SCALE_SYMBOLS", "50,500,2000");
    let max = sizes.iter().copied().max().unwrap_or(50);
    let now = Utc::now();
    let hour = DateTime::from_timestamp(now.timestamp() / 3600 * 3600, 0).expect("hour");
    println!(
        "Mongo-compatible server: {}",
        MongoInstance::binary().display()
    );
    let db = MariaDb::create().await;
    let t = Instant::now();
    for i in 0..max {
        db.insert(h1(), &symbol(i), &rows(i, hour)).await;
    }
    println!(
        "seeded {} rows ({max} symbols × {CANDLES} 1h candles) in {:.1}s",
        max * CANDLES,
        t.elapsed().as_secs_f64()
    );
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(600));
    println!("| symbols | Mongo | read + compute | write | write / (read + compute) | documents |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        one_size(&source, n, now).await;
    }
    source.close().await;
}
