//! One full analytics cycle (10 symbols × {1h, 1d}, 90 days of 1h data) against streaming the
//! same rows from MySQL in the same run, and the computation alone on Series A.
//!
//! Needs the local MariaDB (`make services`): `cargo bench -p analytics --bench cycle`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::time::{Duration, Instant};

use analytics::analysis::{analyze, is_hourly};
use analytics::config::Settings;
use analytics::golden::series_a;
use analytics::options::Options;
use analytics::reads::analyze_all;
use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use rust_decimal::Decimal;
use store::testing::{MariaDb, candle};
use store::{KlineSource, Timeframe};

const SYMBOLS: [&str; 10] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT", "DOTUSDT", "LINKUSDT", "LTCUSDT", "BCHUSDT",
    "XLMUSDT", "XRPUSDT",
];

fn dec(x: f64) -> Decimal {
    format!("{x:.8}").parse().expect("decimal")
}

fn seed_rows(symbol: &str, tf: Timeframe, n: usize, newest: DateTime<Utc>) -> Vec<store::Kline> {
    let g = series_a(n);
    g.iter()
        .enumerate()
        .map(|(i, c)| {
            let open = newest - chrono::Duration::seconds(tf.seconds() * (n - 1 - i) as i64);
            let mut k = candle(symbol, tf, open);
            (k.open, k.high, k.low, k.close, k.volume) = (
                dec(c.open),
                dec(c.high),
                dec(c.low),
                dec(c.close),
                dec(c.volume),
            );
            k
        })
        .collect()
}

/// A database of the [`SYMBOLS`]' Series A: 90 days of 1h candles up to the current hour and
/// 90 daily candles up to today.
fn seeded(rt: &tokio::runtime::Runtime, h1: Timeframe, d1: Timeframe) -> MariaDb {
    let now = Utc::now();
    let hour = DateTime::from_timestamp(now.timestamp() / 3600 * 3600, 0).expect("hour");
    let day = DateTime::from_timestamp(now.timestamp() / 86_400 * 86_400, 0).expect("day");
    rt.block_on(async {
        let db = MariaDb::create().await;
        for s in SYMBOLS {
            db.insert(h1, s, &seed_rows(s, h1, 90 * 24, hour)).await;
            db.insert(d1, s, &seed_rows(s, d1, 90, day)).await;
        }
        db
    })
}

/// Every timeframe's rows of `settings`, read now.
async fn read_all(
    source: &KlineSource,
    settings: &Settings,
) -> Vec<(Timeframe, Vec<(String, Vec<analytics::candle::Candle>)>)> {
    let mut all = Vec::new();
    for &tf in &settings.timeframes {
        all.push((
            tf,
            analytics::reads::read_timeframe(source, settings, tf, Utc::now())
                .await
                .expect("read")
                .into_iter()
                .map(|(s, c)| (s, c.expect("readable")))
                .collect::<Vec<_>>(),
        ));
    }
    all
}

/// The group `cycle_10_symbols`: reading only, reading and computing (a whole cycle without
/// its writes), and computing only on rows already in memory.
fn bench_cycle(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    source: &KlineSource,
    settings: &Settings,
) {
    let mut g = c.benchmark_group("cycle_10_symbols");
    g.sample_size(20);
    g.bench_function("read_only", |b| {
        b.iter(|| {
            rt.block_on(async {
                for &tf in &settings.timeframes {
                    analytics::reads::read_timeframe(source, settings, tf, Utc::now())
                        .await
                        .expect("read");
                }
            })
        })
    });
    g.bench_function("read_and_compute", |b| {
        b.iter(|| {
            rt.block_on(analyze_all(source, settings, Utc::now()))
                .expect("cycle")
        })
    });
    // The computation alone, on rows already in memory.
    let series = rt.block_on(read_all(source, settings));
    g.bench_function("compute_only", |b| {
        b.iter(|| {
            let t = Utc::now();
            for (tf, s) in &series {
                analyze(s, *tf, t, t, &Options::default(), is_hourly(*tf));
            }
        })
    });
    g.finish();
}

/// Whole process: `dm-analytics compute` on Series A (release binary built by cargo bench),
/// the mean of 20 runs.
fn time_the_compute_process() {
    let csv = std::env::temp_dir().join("dm-analytics-bench-series-a.csv");
    std::fs::write(&csv, analytics::golden::to_csv(&series_a(720))).expect("csv");
    let bin = std::env::current_exe().ok().and_then(|p| {
        p.parent()
            .and_then(|d| d.parent())
            .map(|d| d.join("dm-analytics"))
    });
    if let Some(bin) = bin.filter(|b| b.exists()) {
        let runs = 20;
        let started = Instant::now();
        for _ in 0..runs {
            let out = std::process::Command::new(&bin)
                .args(["compute", "--timeframe", "1h", "--candles"])
                .arg(format!("BTCUSDT={}", csv.display()))
                .output()
                .expect("compute");
            assert!(out.status.success());
        }
        println!(
            "dm-analytics compute on Series A (whole process): {:.2} ms mean over {runs} runs",
            started.elapsed().as_secs_f64() * 1e3 / f64::from(runs)
        );
    } else {
        println!("dm-analytics binary not found next to the bench; skipped the process timing");
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let h1: Timeframe = "1h".parse().expect("1h");
    let d1: Timeframe = "1d".parse().expect("1d");
    let db = seeded(&rt, h1, d1);
    let _guard = rt.enter(); // the pool spawns its reaper on the runtime
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(30));
    let settings = Settings {
        symbols: SYMBOLS.iter().map(|s| (*s).to_owned()).collect(),
        timeframes: vec![h1, d1],
        options: Options::default(),
        db_timeout: Duration::from_secs(30),
    };
    bench_cycle(c, &rt, &source, &settings);

    let a = vec![("BTCUSDT".to_owned(), series_a(720))];
    let as_of = analytics::golden::start() + chrono::Duration::hours(720);
    c.bench_function("series_a_all_metrics", |b| {
        b.iter(|| analyze(&a, h1, as_of, as_of, &Options::default(), false))
    });

    time_the_compute_process();
    rt.block_on(source.close());
    drop(db);
}

criterion_group!(benches, bench);
criterion_main!(benches);
