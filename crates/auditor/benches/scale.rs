//! `make bench-scale` (auditor half): one audit cycle at 50, 500 and 2,000 datasets (symbols ×
//! 5 timeframes, a 24 h window, every other dataset with a gap), its read-and-check phase and
//! its write phase, with Mongo direct and through a 10 ms round trip (testkit's latency proxy);
//! today's batched writes (each round one transaction) against the same rounds without
//! transactions (a standalone server) and the one-request-per-document path at 500; and 10
//! consecutive cycles at 2,000, 5 minutes apart, the extractor writing the candles that closed
//! in between, into the same database, then 10 each into a new database on one server, with
//! the write phase split by command and collection. Every scenario gets a freshly started
//! server. Needs the local MariaDB and `.venv-mongo` (`make services`).
//!
//! `cargo bench -p auditor --bench scale` (`SCALE_SIZES=50,500` to run fewer sizes;
//! `DM_TEST_MONGOD=<path to secantusd-rs>` for the faster server, as `make bench-scale-rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use auditor::config::{Settings, Symbols};
use auditor::dataset::DatasetReport;
use auditor::score::Profile;
use auditor::write::{
    Written, ensure_indexes, stored_row_keys, write_reports, write_reports_per_document,
};
use chrono::{DateTime, Utc};
use store::testing::commands::{describe, timed_sink};
use store::testing::fresh::FreshMongo;
use store::testing::{MariaDb, MongoInstance, candle, sizes_from_env};
use store::{Fence, KlineSource, Timeframe};
use tokio_util::sync::CancellationToken;

const TIMEFRAMES: [&str; 5] = ["5m", "15m", "30m", "1h", "1d"];
const MAX_SYMBOLS: usize = 400;
/// 10 ms round trip.
const ONE_WAY: Duration = Duration::from_millis(5);

fn symbol(i: usize) -> String {
    format!("S{i:03}USDT")
}

fn timeframes() -> Vec<Timeframe> {
    TIMEFRAMES
        .iter()
        .map(|s| s.parse().expect("timeframe"))
        .collect()
}

fn settings(symbols: usize) -> Settings {
    let timeframes = timeframes();
    Settings {
        timeframes: timeframes.clone(),
        symbols: Symbols::List((0..symbols).map(symbol).collect()),
        window: 86_400,
        tolerance: 60,
        max_lag: timeframes
            .iter()
            .map(|&tf| (tf, auditor::config::default_max_lag(tf)))
            .collect(),
        profile: Profile::V3,
        max_row_findings: 100,
        min_due_slots: 7,
        db_timeout: Duration::from_secs(120),
        health_history_days: 30,
        // Klines only: the scale figures are about the klines datasets' writes.
        trades: auditor::trades::TradesSettings {
            enabled: false,
            window: 3_600,
            reference: "5m".parse().expect("tf"),
        },
    }
}

/// Every dataset over the widest window; every other symbol misses one candle per timeframe.
async fn seed(db: &MariaDb, symbols: usize, now: DateTime<Utc>) -> usize {
    let mut total = 0;
    for tf in timeframes() {
        let i = tf.seconds();
        let start = now.timestamp() - 86_400.max(7 * i + 86_400 * 2);
        let first = start.div_euclid(i) * i;
        for s in 0..symbols {
            let hole = (s % 2 == 0).then_some(first + i * 5);
            let rows: Vec<_> = (first..now.timestamp() - i)
                .step_by(usize::try_from(i).expect("positive"))
                .filter(|t| Some(*t) != hole)
                .map(|t| candle(&symbol(s), tf, DateTime::from_timestamp(t, 0).expect("t")))
                .collect();
            total += rows.len();
            db.insert(tf, &symbol(s), &rows).await;
        }
    }
    total
}

/// The candles that closed after `from` and by `to` (open time in [from − I, to − I)) for the
/// first `symbols` symbols, as the extractor writes them between two cycles: consecutive
/// cycles then audit the same shape of data instead of a growing tail of missing candles.
async fn extract(db: &MariaDb, symbols: usize, from: DateTime<Utc>, to: DateTime<Utc>) {
    for tf in timeframes() {
        let i = tf.seconds();
        // The first open time not seeded yet: `seed` wrote the aligned ones before from − I.
        let next = (from.timestamp() - 1).div_euclid(i) * i;
        for s in 0..symbols {
            let rows: Vec<_> = (next..to.timestamp() - i)
                .step_by(usize::try_from(i).expect("positive"))
                .map(|t| candle(&symbol(s), tf, DateTime::from_timestamp(t, 0).expect("t")))
                .collect();
            db.insert(tf, &symbol(s), &rows).await;
        }
    }
}

/// One cycle's phases.
struct Phases {
    read: Duration,
    write: Duration,
    written: Written,
    /// The write phase's commands: label → (commands, time the driver waited for them).
    commands: BTreeMap<String, (usize, Duration)>,
}

async fn cycle(
    source: &KlineSource,
    settings: &Settings,
    url: &str,
    now: DateTime<Utc>,
    per_document: bool,
) -> Phases {
    let never = CancellationToken::new();
    let (sink, timer) = timed_sink(url, Duration::from_secs(300)).await;
    ensure_indexes(&sink, 30).await.expect("indexes");
    let t = Instant::now();
    let reports: Vec<DatasetReport> =
        auditor::reads::audit_all(source, settings, now, None, &never)
            .await
            .expect("audit");
    let read = t.elapsed();
    timer.take();
    let t = Instant::now();
    let _stored = stored_row_keys(&sink, auditor::reads::earliest_start(settings, now))
        .await
        .expect("stored keys");
    let fence = Fence::new("data-manager-auditor", 1, "bench");
    let run = format!("bench-{}", now.timestamp());
    let written = if per_document {
        write_reports_per_document(&sink, &fence, &reports, &run, now, &never).await
    } else {
        write_reports(&sink, &fence, &reports, &run, now, &never).await
    }
    .expect("write");
    let write = t.elapsed();
    let commands = timer.take();
    sink.shutdown().await;
    Phases {
        read,
        write,
        written,
        commands,
    }
}

fn s(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A source on a new database seeded for `symbols` symbols, its buffer pool warmed by one
/// cycle (the database is dropped with the returned guard).
async fn seeded_source(symbols: usize, now: DateTime<Utc>) -> (MariaDb, KlineSource) {
    let db = MariaDb::create().await;
    let t = Instant::now();
    let rows = seed(&db, symbols, now).await;
    println!(
        "seeded {rows} rows ({symbols} symbols × 5 timeframes) in {:.1}s",
        s(t.elapsed())
    );
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(120));
    let never = CancellationToken::new();
    let _ = auditor::reads::audit_all(&source, &settings(symbols), now, None, &never).await;
    (db, source)
}

/// How a scenario writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    /// Batched rounds, each one transaction (the service's path).
    Batched,
    /// Batched rounds on a standalone server: no transactions (the path before them).
    NoTransactions,
    /// One request per document (the path before batching).
    PerDocument,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Batched => "batched",
            Path::NoTransactions => "batched, no transactions (before)",
            Path::PerDocument => "per document (before)",
        }
    }
}

/// One scenario's key: (datasets, path, through the proxy).
type Scenario = (usize, Path, bool);

/// One cycle per size, path and Mongo reach, each on a fresh server, printed as a table row;
/// returns each scenario's whole-cycle time.
async fn compare_paths(
    source: &KlineSource,
    sizes: &[usize],
    now: DateTime<Utc>,
) -> BTreeMap<Scenario, Duration> {
    println!(
        "| datasets | path | Mongo | read + checks | write | write/read | whole cycle | documents |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut whole = BTreeMap::new();
    for &n in sizes {
        let st = settings(n / 5);
        let mut paths = vec![Path::Batched];
        if n == 500 {
            paths.extend([Path::NoTransactions, Path::PerDocument]);
        }
        for path in paths {
            for proxied in [false, true] {
                let one_way = proxied.then_some(ONE_WAY);
                let mongo = if path == Path::NoTransactions {
                    FreshMongo::start_standalone(one_way).await
                } else {
                    FreshMongo::start(one_way).await
                };
                let per_document = path == Path::PerDocument;
                let p = cycle(source, &st, &mongo.url, now, per_document).await;
                print_row(n, path, proxied, &p);
                whole.insert((n, path, proxied), p.read + p.write);
            }
        }
    }
    whole
}

fn print_row(n: usize, path: Path, proxied: bool, p: &Phases) {
    let w = p.written;
    println!(
        "| {n} | {} | {} | {:.2} s | {:.2} s | {:.2}× | {:.2} s | {} findings, {} health, {} resolved |",
        path.label(),
        if proxied { "10 ms RTT" } else { "direct" },
        s(p.read),
        s(p.write),
        s(p.write) / s(p.read),
        s(p.read + p.write),
        w.findings,
        w.health,
        w.resolved,
    );
}

/// Each proxied scenario's whole cycle against the same scenario direct.
fn print_latency_ratios(whole: &BTreeMap<Scenario, Duration>) {
    for ((n, path, proxied), d) in whole {
        if *proxied && let Some(direct) = whole.get(&(*n, *path, false)) {
            println!(
                "{n} datasets, {}: whole cycle through 10 ms RTT / direct = {:.2}×",
                path.label(),
                s(*d) / s(*direct)
            );
        }
    }
}

/// The extractor's database behind a benchmark: the seeded symbols, and the time up to which
/// their closed candles are written.
struct Extractor {
    db: MariaDb,
    symbols: usize,
    until: DateTime<Utc>,
}

impl Extractor {
    /// Writes the candles that closed by `to`.
    async fn advance(&mut self, to: DateTime<Utc>) {
        extract(&self.db, self.symbols, self.until, to).await;
        self.until = to;
    }
}

/// Ten batched cycles at `n` datasets, 5 minutes apart from the extractor's time, on a fresh
/// server, the extractor writing the candles that closed in between: into one database
/// (whether the write phase grows as the collections fill), or each into a new database
/// (whether it grows with what the server has served, whatever the collections hold).
async fn consecutive_cycles(
    extractor: &mut Extractor,
    source: &KlineSource,
    n: usize,
    same_db: bool,
) {
    let st = settings(n / 5);
    let mongo = FreshMongo::start(None).await;
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    let into = if same_db {
        "one database"
    } else {
        "a new database each"
    };
    println!("\n10 consecutive cycles at {n} datasets into {into} (direct), 5 min apart:");
    // A freshly started server's first write phase can be slower (1.4× the next ones on
    // secantusd-rs): one cycle into a database of its own first, so the ten measure growth.
    let warm_up = cycle(
        source,
        &st,
        &mongo.another_database(),
        extractor.until,
        false,
    )
    .await;
    println!(
        "warm-up cycle, another database: write {:.2} s",
        s(warm_up.write)
    );
    for k in 0..10 {
        let at = extractor.until + chrono::Duration::minutes(5);
        extractor.advance(at).await;
        let url = if same_db {
            mongo.url.clone()
        } else {
            mongo.another_database()
        };
        let p = cycle(source, &st, &url, at, false).await;
        let w = p.written;
        println!(
            "cycle {}: read + checks {:.2} s, write {:.2} s, write/read {:.2}×; {} findings, {} health, {} resolved ({})",
            k + 1,
            s(p.read),
            s(p.write),
            s(p.write) / s(p.read),
            w.findings,
            w.health,
            w.resolved,
            describe(&p.commands)
        );
        writes.push(s(p.write));
        reads.push(s(p.read));
    }
    print_spread("write phase", &writes);
    // Identical work every cycle: its spread is the machine's noise.
    print_spread("read + checks", &reads);
}

/// A phase's mean over the cycles, its spread around the mean, and its trend: the
/// least-squares slope per cycle, as a share of the mean (flat is about 0 %).
fn print_spread(phase: &str, times: &[f64]) {
    let n = times.len() as f64;
    let mean = times.iter().sum::<f64>() / n;
    let (lo, hi) = times
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), w| (lo.min(*w), hi.max(*w)));
    let mid = (n - 1.0) / 2.0;
    let (mut num, mut den) = (0.0, 0.0);
    for (k, t) in times.iter().enumerate() {
        let dk = k as f64 - mid;
        num += dk * (t - mean);
        den += dk * dk;
    }
    println!(
        "{phase} over {} cycles: mean {mean:.2} s, min {:.0} % / max {:.0} % of the mean, trend {:+.1} % of the mean per cycle (first {:.2} s, last {:.2} s)",
        times.len(),
        100.0 * lo / mean,
        100.0 * hi / mean,
        100.0 * num / den / mean,
        times[0],
        times[times.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let sizes = sizes_from_env("SCALE_SIZES", "50,500,2000");
    let max = sizes.iter().copied().max().unwrap_or(50).div_ceil(5);
    assert!(max <= MAX_SYMBOLS, "at most {} datasets", MAX_SYMBOLS * 5);
    // The current time (on a 5-minute grid), not a fixed date: the health history's TTL index
    // would otherwise have the server deleting every cycle's documents while we write.
    let now: DateTime<Utc> =
        DateTime::from_timestamp(Utc::now().timestamp() / 300 * 300, 0).expect("now");
    println!(
        "Mongo-compatible server: {}",
        MongoInstance::binary().display()
    );
    let (db, source) = seeded_source(max, now).await;
    let whole = compare_paths(&source, &sizes, now).await;
    print_latency_ratios(&whole);
    let largest = sizes.iter().copied().max().unwrap_or(50);
    let mut extractor = Extractor {
        db,
        symbols: max,
        until: now,
    };
    consecutive_cycles(&mut extractor, &source, largest, true).await;
    consecutive_cycles(&mut extractor, &source, largest, false).await;
    source.close().await;
}
