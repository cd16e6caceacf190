//! Audit vs bare read (issue 4 "Measure"): seed MariaDB with 10 symbols × 5 timeframes × 30 days
//! of klines (137,100 rows), then time one full audit over a 30-day window against merely
//! streaming the same rows through the same source, alternating, 3 runs each, medians.
//! Also reports peak RSS. Needs the local MariaDB (`deploy/local/ensure-mariadb.sh`).
//!
//! `cargo bench -p auditor --bench audit` (add `--profile dev` to skip the release build).

use std::time::{Duration, Instant};

use auditor::config::{Settings, Symbols};
use auditor::score::Profile;
use chrono::{DateTime, Utc};
use store::testing::{MariaDb, candle};
use store::{KlineSource, Timeframe};

const SYMBOLS: [&str; 10] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "ADAUSDT", "DOTUSDT", "LINKUSDT", "LTCUSDT", "BCHUSDT",
    "XLMUSDT", "XRPUSDT",
];
const DAYS: i64 = 30;
const RUNS: usize = 3;

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timeframes() -> Vec<Timeframe> {
    ["5m", "15m", "30m", "1h", "1d"]
        .iter()
        .map(|s| s.parse().expect("timeframe"))
        .collect()
}

/// Every symbol's closed candles of every timeframe from `start` to `now`; returns the count.
async fn seed(db: &MariaDb, start: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let mut total = 0usize;
    for tf in timeframes() {
        let i = tf.seconds();
        let first = start.timestamp().div_euclid(i) * i + i;
        for sym in SYMBOLS {
            let rows: Vec<_> = (first..now.timestamp() - i)
                .step_by(usize::try_from(i).expect("positive"))
                .map(|t| candle(sym, tf, DateTime::from_timestamp(t, 0).expect("t")))
                .collect();
            total += rows.len();
            db.insert(tf, sym, &rows).await;
        }
    }
    total
}

/// The klines audit of every symbol and timeframe over a `window` of seconds.
fn settings(window: i64) -> Settings {
    let timeframes = timeframes();
    Settings {
        timeframes: timeframes.clone(),
        symbols: Symbols::List(SYMBOLS.iter().map(|s| (*s).to_owned()).collect()),
        window,
        tolerance: 60,
        max_lag: timeframes
            .iter()
            .map(|&tf| (tf, auditor::config::default_max_lag(tf)))
            .collect(),
        profile: Profile::V3,
        max_row_findings: 100,
        min_due_slots: 7,
        db_timeout: Duration::from_secs(60),
        trades: auditor::trades::TradesSettings {
            enabled: false,
            window: 3_600,
            reference: "5m".parse().expect("tf"),
        },
        health_history_days: 30,
    }
}

/// The medians of [`RUNS`] alternating passes of a bare read and an audit of the same rows.
struct Measured {
    read: Duration,
    audit: Duration,
    streamed: u64,
    audited_rows: i64,
}

/// Streams every dataset's rows from `start` to `now` through `source`; returns the count.
async fn bare_read(source: &KlineSource, start: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    let mut streamed = 0;
    for tf in timeframes() {
        for sym in SYMBOLS {
            streamed += source
                .scan(tf, sym, start, now, |k| {
                    let _ = std::hint::black_box(k);
                })
                .await
                .expect("scan");
        }
    }
    streamed
}

/// A warm-up audit, then [`RUNS`] passes each of a bare read and an audit, alternating.
async fn measure(
    source: &KlineSource,
    settings: &Settings,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Measured {
    let never = tokio_util::sync::CancellationToken::new();
    // Warm the buffer pool and the connection once.
    let _ = auditor::reads::audit_all(source, settings, now, None, &never)
        .await
        .expect("warm-up");
    let (mut reads, mut audits) = (Vec::new(), Vec::new());
    let mut streamed = 0u64;
    let mut audited_rows = 0i64;
    for _ in 0..RUNS {
        let t = Instant::now();
        streamed = bare_read(source, start, now).await;
        reads.push(t.elapsed());

        let t = Instant::now();
        let reports = auditor::reads::audit_all(source, settings, now, None, &never)
            .await
            .expect("audit");
        audits.push(t.elapsed());
        audited_rows = reports.iter().map(|r| r.counts.rows_in_window).sum();
    }
    Measured {
        read: median(reads),
        audit: median(audits),
        streamed,
        audited_rows,
    }
}

#[tokio::main]
async fn main() {
    let now: DateTime<Utc> = DateTime::from_timestamp(1_761_057_000, 0).expect("now"); // 2025-10-21 14:30
    let window = DAYS * 86_400;
    let start = now - chrono::Duration::seconds(window);

    let db = MariaDb::create().await;
    let seed_started = Instant::now();
    let total = seed(&db, start, now).await;
    println!(
        "seeded {total} rows in {:.1}s",
        seed_started.elapsed().as_secs_f64()
    );
    let rss_after_seed = rss_kib("VmRSS:");

    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(60));
    let m = measure(&source, &settings(window), start, now).await;
    let (read, audit) = (m.read, m.audit);
    println!(
        "rows streamed per pass: {}; rows audited: {}",
        m.streamed, m.audited_rows
    );
    println!(
        "bare read: {:.3}s ({:.0} rows/s); audit: {:.3}s ({:.0} rows/s); audit/read = {:.2}x (target ≤ 1.5x)",
        read.as_secs_f64(),
        m.streamed as f64 / read.as_secs_f64(),
        audit.as_secs_f64(),
        m.audited_rows as f64 / audit.as_secs_f64(),
        audit.as_secs_f64() / read.as_secs_f64()
    );
    println!(
        "RSS after seeding: {} MiB; peak RSS (VmHWM, seeding included): {} MiB; RSS now: {} MiB",
        rss_after_seed / 1024,
        rss_kib("VmHWM:") / 1024,
        rss_kib("VmRSS:") / 1024
    );
    source.close().await;
}
