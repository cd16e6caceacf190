//! A seeded, pure generator of realistic klines for the extractor's timeframes, with injected
//! faults the auditor must find.
//!
//! One 5-minute price path per symbol (a log-normal random walk with a daily volume cycle) is
//! aggregated into 15m, 30m, 1h and 1d candles, so the timeframes agree with each other as the
//! exchange's would. Only candles closed (and "extracted" a minute later) by `now` exist.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use store::{Kline, Timeframe};

/// The timeframes the extractor writes (tables `klines_m5` … `klines_d1`).
pub const TIMEFRAMES: [&str; 5] = ["5m", "15m", "30m", "1h", "1d"];

/// The finest interval: every other timeframe is built from it.
const BASE_SECONDS: i64 = 300;

/// The extractor writes a candle this long after it closes (so no row is a `partial_candle`).
const EXTRACTION_DELAY_SECONDS: i64 = 60;

/// How much history to generate, and for whom.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The instant the data is generated for.
    pub now: DateTime<Utc>,
    /// Symbols, e.g. `BTCUSDT`. Faults go to the first ones (see [`generate`]).
    pub symbols: Vec<String>,
    /// Days of `1h` and `1d` history (analytics reads 30 d windows).
    pub days: i64,
    /// Days of `5m`, `15m` and `30m` history (the auditor reads a 24 h window).
    pub fine_days: i64,
    /// Seed of the random walk: the same plan always gives the same rows.
    pub seed: u64,
}

/// The candles of one symbol × timeframe.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The symbol.
    pub symbol: String,
    /// The timeframe (and table).
    pub timeframe: Timeframe,
    /// Candles in open-time order.
    pub rows: Vec<Kline>,
}

/// What was injected, and which auditor check must report it (the checks are described in
/// docs/audit-rules.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fault {
    /// `gap`, `bad_ohlc` or `stale`.
    pub kind: &'static str,
    /// The auditor's finding kind that must appear: `gap`, `ohlc_violation`, `stale`.
    pub check: &'static str,
    /// The dataset's symbol.
    pub symbol: String,
    /// The dataset's timeframe label.
    pub timeframe: &'static str,
    /// For a gap the first missing open time, for a bad candle its open time, for a stale
    /// series the open time of the first candle withheld.
    pub at: DateTime<Utc>,
    /// One line for people.
    pub description: String,
}

/// Everything to insert, and the faults in it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// One dataset per symbol × timeframe.
    pub datasets: Vec<Dataset>,
    /// The injected faults.
    pub faults: Vec<Fault>,
}

impl Generated {
    /// Rows over every dataset.
    pub fn row_count(&self) -> usize {
        self.datasets.iter().map(|d| d.rows.len()).sum()
    }
}

/// Candles missing from the gap fault (3 h of `1h`: severity `high`).
const GAP_CANDLES: i64 = 3;
/// How far back the gap ends, in hours: inside the auditor's 24 h window and past the 2 h lag.
const GAP_HOURS_AGO: i64 = 10;
/// How far back the bad `15m` candle opens.
const BAD_CANDLE_HOURS_AGO: i64 = 6;
/// The `30m` extractor "stopped" this long ago: more than 2 L (L = 1 h), so `high`.
const STALE_HOURS: i64 = 4;

/// Generates the datasets of `plan` with three injected faults:
/// - **gap**: the first symbol's `1h` series lacks 3 candles about 10 h ago;
/// - **bad OHLC**: the second symbol's `15m` candle about 6 h ago has its high below its close;
/// - **stale timeframe**: no symbol has a `30m` candle for the last 4 h.
///
/// With one symbol, it takes every fault. Pure: same plan, same output.
///
/// # Panics
/// Never: every entry of [`TIMEFRAMES`] is a supported timeframe.
pub fn generate(plan: &Plan) -> Generated {
    let mut datasets = Vec::new();
    let mut faults = Vec::new();
    let n = plan.symbols.len().max(1);
    let now_s = plan.now.timestamp();
    for (i, symbol) in plan.symbols.iter().enumerate() {
        let profile = Profile::of(symbol, i);
        let mut rng = SplitMix64::new(plan.seed ^ hash(symbol));
        let day = 86_400;
        let start = (now_s / day - plan.days) * day;
        let base = walk(&mut rng, &profile, start, now_s);
        for label in TIMEFRAMES {
            let tf: Timeframe = label.parse().expect("TIMEFRAMES are supported timeframes");
            let span_days = if tf.seconds() >= 3_600 {
                plan.days
            } else {
                plan.fine_days
            };
            let from = (now_s / day - span_days) * day;
            let mut rows: Vec<Kline> = aggregate(&base, tf.seconds(), now_s)
                .into_iter()
                .filter(|c| c.open >= from)
                .map(|c| c.to_kline(symbol, tf))
                .collect();
            inject(&mut rows, &mut faults, symbol, tf, i, n, plan.now);
            datasets.push(Dataset {
                symbol: symbol.clone(),
                timeframe: tf,
                rows,
            });
        }
    }
    Generated { datasets, faults }
}

fn inject(
    rows: &mut Vec<Kline>,
    faults: &mut Vec<Fault>,
    symbol: &str,
    tf: Timeframe,
    index: usize,
    symbols: usize,
    now: DateTime<Utc>,
) {
    let floor = |secs: i64| {
        let t = (now.timestamp() - secs).div_euclid(tf.seconds()) * tf.seconds();
        DateTime::from_timestamp(t, 0).expect("a recent instant")
    };
    match tf.label() {
        "1h" if index == 0 => {
            let first = floor(GAP_HOURS_AGO * 3_600);
            let end = first + Duration::hours(GAP_CANDLES);
            rows.retain(|k| k.open_time < first || k.open_time >= end);
            faults.push(Fault {
                kind: "gap",
                check: "gap",
                symbol: symbol.to_owned(),
                timeframe: tf.label(),
                at: first,
                description: format!("{GAP_CANDLES} missing 1h candles from {first}"),
            });
        }
        "15m" if index == 1 % symbols => {
            let at = floor(BAD_CANDLE_HOURS_AGO * 3_600);
            if let Some(k) = rows.iter_mut().find(|k| k.open_time == at) {
                // Below the body: high < max(open, close).
                k.high = k.open.min(k.close) - (k.high - k.open.max(k.close)).max(Decimal::ONE);
                faults.push(Fault {
                    kind: "bad_ohlc",
                    check: "ohlc_violation",
                    symbol: symbol.to_owned(),
                    timeframe: tf.label(),
                    at,
                    description: format!("15m candle at {at} with its high below open and close"),
                });
            }
        }
        "30m" => {
            let from = floor(STALE_HOURS * 3_600);
            rows.retain(|k| k.open_time < from);
            faults.push(Fault {
                kind: "stale",
                check: "stale",
                symbol: symbol.to_owned(),
                timeframe: tf.label(),
                at: from,
                description: format!("no 30m candle since {from} (extractor stopped)"),
            });
        }
        _ => {}
    }
}

/// Per-symbol scale: a plausible price, tick size, volatility and volume.
#[derive(Debug, Clone)]
struct Profile {
    price: f64,
    /// Decimal places of a price (the tick).
    price_dp: u32,
    /// Standard deviation of a 5-minute log return.
    sigma: f64,
    /// Mean base volume per 5 minutes.
    volume: f64,
}

impl Profile {
    fn of(symbol: &str, index: usize) -> Profile {
        let (price, price_dp, sigma, volume) = match symbol {
            "BTCUSDT" => (64_000.0, 1, 0.0015, 900.0),
            "ETHUSDT" => (3_200.0, 2, 0.002, 9_000.0),
            "BNBUSDT" => (580.0, 2, 0.002, 4_000.0),
            "SOLUSDT" => (150.0, 3, 0.003, 40_000.0),
            "ADAUSDT" => (0.45, 5, 0.003, 9_000_000.0),
            "XRPUSDT" => (0.6, 4, 0.003, 6_000_000.0),
            _ => (10.0 * (index as f64 + 1.0), 4, 0.0025, 100_000.0),
        };
        Profile {
            price,
            price_dp,
            sigma,
            volume,
        }
    }
}

/// A candle in exact decimals before it becomes a row; `open` in epoch seconds.
#[derive(Debug, Clone)]
struct Candle {
    open: i64,
    interval: i64,
    o: Decimal,
    h: Decimal,
    l: Decimal,
    c: Decimal,
    volume: Decimal,
    quote: Decimal,
    trades: i64,
    taker_base: Decimal,
    taker_quote: Decimal,
}

impl Candle {
    fn to_kline(&self, symbol: &str, tf: Timeframe) -> Kline {
        let open = DateTime::from_timestamp(self.open, 0).expect("a recent instant");
        let i = Duration::seconds(self.interval);
        Kline {
            id: format!("{symbol}_{}", open.timestamp_millis()),
            timestamp: open,
            open_time: open,
            // The extractor's DATETIME columns hold whole seconds: open + I − 1 s.
            close_time: open + i - Duration::seconds(1),
            interval: tf.label().to_owned(),
            open: self.o,
            high: self.h,
            low: self.l,
            close: self.c,
            volume: self.volume,
            quote_asset_volume: self.quote,
            number_of_trades: self.trades,
            taker_buy_base: self.taker_base,
            taker_buy_quote: self.taker_quote,
            extracted_at: open + i + Duration::seconds(EXTRACTION_DELAY_SECONDS),
        }
    }
}

fn dec(x: f64, dp: u32) -> Decimal {
    Decimal::from_f64(x).unwrap_or(Decimal::ZERO).round_dp(dp)
}

/// The 5-minute candles from `start` up to the last one extracted by `now`.
fn walk(rng: &mut SplitMix64, p: &Profile, start: i64, now: i64) -> Vec<Candle> {
    let tick = Decimal::new(1, p.price_dp);
    let mut price = p.price * (1.0 + 0.05 * (rng.uniform() - 0.5));
    let mut out = Vec::new();
    let mut open = start;
    while open + BASE_SECONDS + EXTRACTION_DELAY_SECONDS <= now {
        let o = dec(price, p.price_dp).max(tick);
        price *= (p.sigma * rng.normal()).exp();
        let c = dec(price, p.price_dp).max(tick);
        let wick = |r: f64| (p.sigma * 0.6 * r.abs()).min(0.05);
        let h = dec(
            o.max(c).to_f64_lossy() * (1.0 + wick(rng.normal())),
            p.price_dp,
        )
        .max(o.max(c));
        let l = dec(
            o.min(c).to_f64_lossy() * (1.0 - wick(rng.normal())),
            p.price_dp,
        )
        .min(o.min(c))
        .max(tick);
        // Busier in the European and US sessions (12:00–20:00 UTC), log-normal noise.
        let hour = (open.rem_euclid(86_400) / 3_600) as f64;
        let session = 1.0 + 0.6 * (-((hour - 16.0) / 4.0).powi(2)).exp();
        let v = p.volume * session * (0.5 * rng.normal()).exp() * 0.8;
        let mid = (o + c).to_f64_lossy() / 2.0;
        let volume = dec(v, 3);
        let quote = dec(volume.to_f64_lossy() * mid, 8);
        let share = 0.4 + 0.2 * rng.uniform();
        let taker_base = dec(volume.to_f64_lossy() * share, 3).min(volume);
        let taker_quote = dec(taker_base.to_f64_lossy() * mid, 8).min(quote);
        out.push(Candle {
            open,
            interval: BASE_SECONDS,
            o,
            h,
            l,
            c,
            volume,
            quote,
            trades: (v / p.volume * 1_500.0).round().max(1.0) as i64,
            taker_base,
            taker_quote,
        });
        open += BASE_SECONDS;
    }
    out
}

/// Candles of `interval` seconds built from complete runs of 5-minute ones, closed by `now`.
fn aggregate(base: &[Candle], interval: i64, now: i64) -> Vec<Candle> {
    let per = usize::try_from(interval / BASE_SECONDS).expect("interval ≥ 5m");
    let mut out = Vec::new();
    let mut i = 0;
    while i < base.len() {
        let open = base[i].open.div_euclid(interval) * interval;
        let group: Vec<&Candle> = base[i..]
            .iter()
            .take_while(|c| c.open < open + interval)
            .collect();
        i += group.len();
        if group.len() != per || open + interval + EXTRACTION_DELAY_SECONDS > now {
            continue; // a partial bucket at either end of the history
        }
        let first = group[0];
        let last = group[per - 1];
        out.push(Candle {
            open,
            interval,
            o: first.o,
            h: group.iter().map(|c| c.h).max().expect("non-empty"),
            l: group.iter().map(|c| c.l).min().expect("non-empty"),
            c: last.c,
            volume: group.iter().map(|c| c.volume).sum(),
            quote: group.iter().map(|c| c.quote).sum(),
            trades: group.iter().map(|c| c.trades).sum(),
            taker_base: group.iter().map(|c| c.taker_base).sum(),
            taker_quote: group.iter().map(|c| c.taker_quote).sum(),
        });
    }
    out
}

trait LossyF64 {
    fn to_f64_lossy(self) -> f64;
}

impl LossyF64 for Decimal {
    fn to_f64_lossy(self) -> f64 {
        store::kline::to_f64(self)
    }
}

/// FNV-1a, so each symbol gets its own stream from one seed.
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: tiny, seeded and stable across crate versions (unlike `StdRng`).
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn plan() -> Plan {
        Plan {
            now: Utc
                .with_ymd_and_hms(2025, 10, 22, 0, 30, 17)
                .single()
                .expect("valid"),
            symbols: vec!["BTCUSDT".into(), "ETHUSDT".into(), "SOLUSDT".into()],
            days: 31,
            fine_days: 2,
            seed: 7,
        }
    }

    fn dataset<'a>(g: &'a Generated, symbol: &str, tf: &str) -> &'a Dataset {
        g.datasets
            .iter()
            .find(|d| d.symbol == symbol && d.timeframe.label() == tf)
            .expect("dataset")
    }

    #[test]
    fn same_plan_same_rows() {
        let a = generate(&plan());
        let b = generate(&plan());
        assert_eq!(a.datasets.len(), 15);
        for (x, y) in a.datasets.iter().zip(&b.datasets) {
            assert_eq!(x.rows, y.rows);
        }
        let mut other = plan();
        other.seed = 8;
        assert_ne!(
            generate(&other).datasets[0].rows[5].close,
            a.datasets[0].rows[5].close
        );
    }

    #[test]
    fn hourly_history_covers_the_days_and_only_closed_candles() {
        let p = plan();
        let g = generate(&p);
        let eth = dataset(&g, "ETHUSDT", "1h");
        // 31 whole days before today plus today's closed hours (00:00 closed at 01:00: none).
        assert_eq!(eth.rows.len(), 31 * 24);
        let last = eth.rows.last().expect("rows");
        assert!(last.open_time + Duration::hours(1) <= p.now);
        assert_eq!(dataset(&g, "ETHUSDT", "1d").rows.len(), 31);
        // 2 days of 5m, plus today's six 5m candles closed and extracted by 00:30:17.
        assert_eq!(dataset(&g, "ETHUSDT", "5m").rows.len(), 2 * 288 + 5);
    }

    #[test]
    fn rows_are_well_formed_apart_from_the_injected_candle() {
        let g = generate(&plan());
        let bad = &g
            .faults
            .iter()
            .find(|f| f.kind == "bad_ohlc")
            .expect("fault");
        for d in &g.datasets {
            let i = d.timeframe.seconds();
            for (n, k) in d.rows.iter().enumerate() {
                assert_eq!(k.open_time.timestamp() % i, 0);
                assert_eq!(
                    k.id,
                    format!("{}_{}", d.symbol, k.open_time.timestamp_millis())
                );
                assert!(k.extracted_at >= k.open_time + Duration::seconds(i));
                assert!(k.low > Decimal::ZERO && k.low <= k.open.min(k.close));
                assert!(k.taker_buy_base <= k.volume && k.taker_buy_quote <= k.quote_asset_volume);
                let injected = d.symbol == bad.symbol
                    && d.timeframe.label() == bad.timeframe
                    && k.open_time == bad.at;
                assert_eq!(k.high < k.open.max(k.close), injected, "{} {n}", d.symbol);
            }
        }
    }

    #[test]
    fn timeframes_agree_on_the_shared_path() {
        let g = generate(&plan());
        let h1 = dataset(&g, "SOLUSDT", "1h");
        let m5 = dataset(&g, "SOLUSDT", "5m");
        let hour = h1.rows.iter().rev().nth(2).expect("an hour");
        let parts: Vec<&Kline> = m5
            .rows
            .iter()
            .filter(|k| {
                k.open_time >= hour.open_time && k.open_time < hour.open_time + Duration::hours(1)
            })
            .collect();
        assert_eq!(parts.len(), 12);
        assert_eq!(parts[0].open, hour.open);
        assert_eq!(parts[11].close, hour.close);
        assert_eq!(parts.iter().map(|k| k.volume).sum::<Decimal>(), hour.volume);
    }

    #[test]
    fn gap_and_stale_faults_remove_the_rows_they_describe() {
        let p = plan();
        let g = generate(&p);
        let gap = g.faults.iter().find(|f| f.kind == "gap").expect("gap");
        assert_eq!((gap.symbol.as_str(), gap.timeframe), ("BTCUSDT", "1h"));
        let btc = dataset(&g, "BTCUSDT", "1h");
        let missing: Vec<_> = (0..5)
            .map(|h| gap.at - Duration::hours(1) + Duration::hours(h))
            .map(|t| btc.rows.iter().any(|k| k.open_time == t))
            .collect();
        assert_eq!(missing, [true, false, false, false, true]);
        assert!(
            p.now - gap.at < Duration::hours(24),
            "inside the audit window"
        );

        let stale: Vec<_> = g.faults.iter().filter(|f| f.kind == "stale").collect();
        assert_eq!(stale.len(), 3, "every symbol's 30m");
        for f in stale {
            let rows = &dataset(&g, &f.symbol, "30m").rows;
            let newest = rows.last().expect("rows").open_time;
            assert_eq!(newest, f.at - Duration::minutes(30));
            assert!(
                p.now - (newest + Duration::minutes(30)) > Duration::hours(2),
                "> 2 L"
            );
        }
    }

    #[test]
    fn one_symbol_takes_every_fault() {
        let mut p = plan();
        p.symbols.truncate(1);
        let kinds: Vec<_> = generate(&p).faults.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["bad_ohlc", "stale", "gap"]);
    }
}
