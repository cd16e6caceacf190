//! Trades audit vs bare read (issue 14): seed MariaDB with 1,000,000 trades of one symbol over a
//! 24 h window of 5m candles (plus 100,000 of a second symbol, for the memory comparison), then
//! time `trades::reads::audit_one` against streaming the same rows through the same query,
//! alternating, 3 runs each, medians. Peak RSS is read after auditing 100 k and then 1 M trades:
//! it must not grow with the number of trades. Needs the local MariaDB.
//!
//! `cargo bench -p auditor --bench trades` (add `--profile dev` to skip the release build).

use std::time::{Duration, Instant};

use auditor::trades::reads::audit_one;
use auditor::trades::reconcile::TradesParams;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use store::testing::{MariaDb, candle};
use store::trades::{BinanceTrade, insert_trades};
use store::{KlineSource, Timeframe};

/// Generated trades; 1 in 5 shares a millisecond, so 1,000,000 (100,000) are stored.
const BIG: (&str, i64) = ("BTCUSDT", 1_250_000);
const SMALL: (&str, i64) = ("ETHUSDT", 125_000);
const RUNS: usize = 3;
/// Trades generated and inserted per batch, so seeding itself stays small in memory.
const BATCH: i64 = 20_000;

fn kib(field: &str) -> u64 {
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

/// `total` trades spread evenly over the 288 candles of `p`'s window, 1 in 5 sharing a
/// millisecond (dropped by the server), plus the candles that count them all.
async fn seed(db: &MariaDb, p: &TradesParams, symbol: &str, total: i64, first_id: i64) -> u64 {
    let tf: Timeframe = p.reference;
    let candles = i64::try_from(p.candles()).expect("candles");
    let per = total / candles;
    let start_ms = p.start().timestamp_millis();
    let slot_ms = tf.seconds() * 1_000;
    let q = Decimal::new(1, 3);
    let qq = Decimal::new(1_000_000_001, 9);
    let klines: Vec<_> = (0..candles)
        .map(|k| {
            let mut c = candle(
                symbol,
                tf,
                p.start() + chrono::Duration::milliseconds(k * slot_ms),
            );
            c.number_of_trades = per;
            c.volume = q * Decimal::from(per);
            c.quote_asset_volume = qq * Decimal::from(per);
            c
        })
        .collect();
    db.insert(tf, symbol, &klines).await;
    let mut kept = 0;
    let mut n = 0;
    while n < per * candles {
        let batch: Vec<BinanceTrade> = (n..(n + BATCH).min(per * candles))
            .map(|i| {
                let (k, j) = (i / per, i % per);
                // Every 5th trade repeats the previous millisecond; all stay inside the candle.
                let ms = start_ms + k * slot_ms + (j - j / 5) * (slot_ms / per.max(1)).max(1);
                BinanceTrade {
                    trade_id: first_id + i,
                    time_ms: ms,
                    price: Decimal::new(100, 0),
                    quantity: q,
                    quote_quantity: qq,
                    is_buyer_maker: i % 2 == 0,
                }
            })
            .collect();
        n += i64::try_from(batch.len()).expect("len");
        kept += insert_trades(&db.pool, symbol, &batch, p.now)
            .await
            .expect("insert trades");
    }
    kept
}

#[tokio::main]
async fn main() {
    let now: DateTime<Utc> = DateTime::from_timestamp(1_761_057_000, 0).expect("now");
    let p = TradesParams {
        now,
        window: 86_400,
        reference: "5m".parse().expect("tf"),
        max_lag: 900,
    };
    let db = MariaDb::create().await;
    let t = Instant::now();
    let mut total = 0;
    for (i, (sym, n)) in [SMALL, BIG].into_iter().enumerate() {
        let first_id = 1 + i64::try_from(i).expect("i") * 100_000_000;
        total += seed(&db, &p, sym, n, first_id).await;
    }
    println!(
        "seeded {total} trade rows (1 in 5 generated trades dropped by ms collision) in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(120));
    let end = p.end() + chrono::Duration::seconds(1);

    let small = audit_one(&source, SMALL.0, p, None).await.expect("audit");
    let hwm_small = kib("VmHWM:");
    let (mut reads, mut decoded, mut audits) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rows, mut report) = (0, None);
    for _ in 0..RUNS {
        let t = Instant::now();
        rows = source
            .count_trades_streamed(BIG.0, p.start(), end)
            .await
            .expect("read");
        reads.push(t.elapsed());

        let t = Instant::now();
        source
            .scan_trades(BIG.0, p.start(), end, |r| {
                let _ = std::hint::black_box(r);
            })
            .await
            .expect("scan");
        decoded.push(t.elapsed());

        let t = Instant::now();
        report = Some(audit_one(&source, BIG.0, p, None).await.expect("audit"));
        audits.push(t.elapsed());
    }
    let hwm_big = kib("VmHWM:");
    let r = report.expect("report");
    let (read, dec, audit) = (median(reads), median(decoded), median(audits));
    println!(
        "rows per pass: {rows}; audited: stored {} expected {} missing {} ({:?} %), findings {:?}",
        r.counts.stored_trades,
        r.counts.expected_trades,
        r.counts.missing_trades,
        r.completeness,
        r.findings
            .iter()
            .map(|f| f.check.as_str())
            .collect::<Vec<_>>()
    );
    println!(
        "bare read (rows counted, not decoded): {:.3}s ({:.0} rows/s); read + decode: {:.3}s; \
         audit: {:.3}s; audit/bare read = {:.2}x (target ≤ 1.5x); audit/read+decode = {:.2}x",
        read.as_secs_f64(),
        rows as f64 / read.as_secs_f64(),
        dec.as_secs_f64(),
        audit.as_secs_f64(),
        audit.as_secs_f64() / read.as_secs_f64(),
        audit.as_secs_f64() / dec.as_secs_f64(),
    );
    println!(
        "peak RSS (VmHWM) after auditing {} trades: {} MiB; after {} trades x{}: {} MiB",
        small.counts.stored_trades,
        hwm_small / 1024,
        r.counts.stored_trades,
        RUNS,
        hwm_big / 1024
    );
    source.close().await;
}
