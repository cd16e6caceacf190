//! Audit vs bare read (issue 4 "Measure"): seed MariaDB with 10 symbols × 5 timeframes × 30 days
//! of klines (137,100 rows), then time one full audit over a 30-day window against merely
//! streaming the same rows through the same source, alternating, 3 runs each, medians.
//! Also reports peak RSS. Needs the local MariaDB (`deploy/local/ensure-mariadb.sh`).
//!
//! `cargo bench -p auditor --bench audit` (add `--profile dev` to skip the release build).

#![allow(
    clippy::too_many_lines,
    reason = "each scenario is told from start to finish; splitting them into named steps is still to do"
)]

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

#[tokio::main]
async fn main() {
    let timeframes: Vec<Timeframe> = ["5m", "15m", "30m", "1h", "1d"]
        .iter()
        .map(|s| s.parse().expect("timeframe"))
        .collect();
    let now: DateTime<Utc> = DateTime::from_timestamp(1_761_057_000, 0).expect("now"); // 2025-10-21 14:30
    let window = DAYS * 86_400;
    let start = now - chrono::Duration::seconds(window);

    let db = MariaDb::create().await;
    let seed_started = Instant::now();
    let mut total = 0usize;
    for &tf in &timeframes {
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
    println!(
        "seeded {total} rows in {:.1}s",
        seed_started.elapsed().as_secs_f64()
    );
    let rss_after_seed = rss_kib("VmRSS:");

    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(60));
    let settings = Settings {
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
    };
    let never = tokio_util::sync::CancellationToken::new();
    // Warm the buffer pool and the connection once.
    let _ = auditor::cycle::audit_all(&source, &settings, now, None, &never)
        .await
        .expect("warm-up");

    let (mut reads, mut audits) = (Vec::new(), Vec::new());
    let mut streamed = 0u64;
    let mut audited_rows = 0i64;
    for _ in 0..RUNS {
        let t = Instant::now();
        streamed = 0;
        for &tf in &timeframes {
            for sym in SYMBOLS {
                streamed += source
                    .scan(tf, sym, start, now, |k| {
                        let _ = std::hint::black_box(k);
                    })
                    .await
                    .expect("scan");
            }
        }
        reads.push(t.elapsed());

        let t = Instant::now();
        let reports = auditor::cycle::audit_all(&source, &settings, now, None, &never)
            .await
            .expect("audit");
        audits.push(t.elapsed());
        audited_rows = reports.iter().map(|r| r.counts.rows_in_window).sum();
    }
    let (read, audit) = (median(reads), median(audits));
    println!("rows streamed per pass: {streamed}; rows audited: {audited_rows}");
    println!(
        "bare read: {:.3}s ({:.0} rows/s); audit: {:.3}s ({:.0} rows/s); audit/read = {:.2}x (target ≤ 1.5x)",
        read.as_secs_f64(),
        streamed as f64 / read.as_secs_f64(),
        audit.as_secs_f64(),
        audited_rows as f64 / audit.as_secs_f64(),
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
