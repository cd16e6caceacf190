//! A realistic market-data mix in the socket client's envelope, for load tests and benchmarks.
//!
//! The shares and sizes are those of the production stream: trade 60 %, depth20 25 %, 24 h
//! ticker 10 %, kline 4 %, markPrice 1 %, over 20 symbols with per-symbol precision and a price
//! random walk; the mean message is about 600 bytes. Kinds are the parser's own
//! [`events::Kind`], so the generator and the consumer name them alike. Generation is pure and seeded: the same seed and
//! clock give the same bytes, so benchmarks and tests are repeatable.

use std::fmt::Write as _;

use events::Kind;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The 20 symbols of the mix, with a starting price and the number of price decimals.
pub const SYMBOLS: [(&str, f64, usize); 20] = [
    ("BTCUSDT", 108_234.56, 2),
    ("ETHUSDT", 3_891.27, 2),
    ("BNBUSDT", 1_092.4, 3),
    ("SOLUSDT", 187.31, 3),
    ("XRPUSDT", 2.4187, 4),
    ("DOGEUSDT", 0.19834, 5),
    ("ADAUSDT", 0.6512, 4),
    ("AVAXUSDT", 21.837, 3),
    ("LINKUSDT", 17.482, 3),
    ("DOTUSDT", 3.127, 3),
    ("TRXUSDT", 0.32418, 5),
    ("MATICUSDT", 0.2231, 4),
    ("LTCUSDT", 93.41, 2),
    ("BCHUSDT", 512.3, 2),
    ("NEARUSDT", 2.418, 3),
    ("ATOMUSDT", 3.218, 3),
    ("UNIUSDT", 6.212, 3),
    ("APTUSDT", 3.318, 4),
    ("ARBUSDT", 0.3214, 4),
    ("OPUSDT", 0.4521, 4),
];

/// The kinds the mix emits, with their share in per mille. Each kind is one stream: trade is
/// `@trade`, depth is `@depth20@100ms` (the spot partial book, 20 levels a side, with no symbol
/// in the payload), ticker is `@ticker`, kline is `@kline_1m`, mark price is `@markPrice@1s`.
const SHARES: [(Kind, u32); 5] = [
    (Kind::Trade, 600),
    (Kind::Depth, 250),
    (Kind::Ticker, 100),
    (Kind::Kline, 40),
    (Kind::MarkPrice, 10),
];

/// The symbol every spot depth message is labelled with: the payload names none, and the socket
/// client labels every symbol's book with its first stream's symbol, as the mix does.
pub const DEPTH_LABEL_SYMBOL: &str = SYMBOLS[0].0;

/// A seeded generator of envelopes.
#[derive(Debug)]
pub struct Mix {
    rng: SmallRng,
    prices: Vec<f64>,
    trade_id: u64,
    update_id: u64,
}

impl Mix {
    /// A generator whose output depends only on `seed` and the times passed in.
    pub fn new(seed: u64) -> Mix {
        Mix {
            rng: SmallRng::seed_from_u64(seed),
            prices: SYMBOLS.iter().map(|s| s.1).collect(),
            trade_id: 5_368_745_213,
            update_id: 79_138_457_112,
        }
    }

    /// The next message, stamped with event time `now_ms`, and its kind and symbol.
    pub fn next_message(&mut self, now_ms: i64) -> (Kind, &'static str, Vec<u8>) {
        let roll = self.rng.random_range(0..1000);
        let mut acc = 0;
        let kind = SHARES
            .iter()
            .find(|(_, share)| {
                acc += share;
                roll < acc
            })
            .map_or(Kind::Trade, |&(k, _)| k);
        let idx = self.rng.random_range(0..SYMBOLS.len());
        let step = self.rng.random_range(-0.0005..0.0005);
        self.prices[idx] *= 1.0 + step;
        let body = self.render(kind, idx, now_ms);
        (kind, SYMBOLS[idx].0, body.into_bytes())
    }

    /// `n` messages with event times spread over the second before `now_ms`.
    pub fn pool(&mut self, n: usize, now_ms: i64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| self.next_message(now_ms - 1000 + (i % 1000) as i64).2)
            .collect()
    }

    fn render(&mut self, kind: Kind, idx: usize, now_ms: i64) -> String {
        let (symbol, _, decimals) = SYMBOLS[idx];
        let price = self.prices[idx];
        let lower = symbol.to_ascii_lowercase();
        let mut out = String::with_capacity(1400);
        let (stream, data) = match kind {
            Kind::Trade => {
                self.trade_id += 1;
                let qty = self.rng.random_range(0.0001..2.0);
                let data = format!(
                    r#"{{"e":"trade","E":{now_ms},"s":"{symbol}","t":{},"p":"{price:.decimals$}","q":"{qty:.8}","T":{},"m":{},"M":true}}"#,
                    self.trade_id,
                    now_ms - 1,
                    self.rng.random_bool(0.5)
                );
                (format!("{lower}@trade"), data)
            }
            Kind::Depth => {
                self.update_id += 1;
                // Spot depth20 names no symbol: the stream label carries DEPTH_LABEL_SYMBOL.
                let mut data = format!(r#"{{"lastUpdateId":{},"bids":["#, self.update_id);
                self.levels(&mut data, price, decimals, -1.0);
                data.push_str(r#"],"asks":["#);
                self.levels(&mut data, price, decimals, 1.0);
                data.push_str("]}");
                (
                    format!("{}@depth20@100ms", DEPTH_LABEL_SYMBOL.to_ascii_lowercase()),
                    data,
                )
            }
            Kind::Ticker => {
                let open = price * 1.01;
                let data = format!(
                    r#"{{"e":"24hrTicker","E":{now_ms},"s":"{symbol}","p":"{:.d$}","P":"{:.3}","w":"{:.8}","x":"{open:.d$}","c":"{price:.d$}","Q":"0.00150000","b":"{:.d$}","B":"1.20345000","a":"{price:.d$}","A":"0.87654000","o":"{open:.d$}","h":"{:.d$}","l":"{:.d$}","v":"18234.56789000","q":"1986543210.12345678","O":{},"C":{now_ms},"F":5350000000,"L":{},"n":18745214}}"#,
                    price - open,
                    (price - open) / open * 100.0,
                    price * 1.001,
                    price * 0.9999,
                    price * 1.02,
                    price * 0.98,
                    now_ms - 86_400_000,
                    self.trade_id,
                    d = decimals
                );
                (format!("{lower}@ticker"), data)
            }
            Kind::Kline => {
                let open_time = now_ms - now_ms.rem_euclid(60_000);
                let data = format!(
                    r#"{{"e":"kline","E":{now_ms},"s":"{symbol}","k":{{"t":{open_time},"T":{},"s":"{symbol}","i":"1m","f":5368700000,"L":{},"o":"{:.d$}","c":"{price:.d$}","h":"{:.d$}","l":"{:.d$}","v":"512.34567000","n":45214,"x":false,"q":"55432109.87654321","V":"260.12345000","Q":"28143210.12345678","B":"0"}}}}"#,
                    open_time + 59_999,
                    self.trade_id,
                    price * 0.999,
                    price * 1.001,
                    price * 0.998,
                    d = decimals
                );
                (format!("{lower}@kline"), data)
            }
            Kind::MarkPrice => {
                let data = format!(
                    r#"{{"e":"markPriceUpdate","E":{now_ms},"s":"{symbol}","p":"{price:.8}","P":"{:.8}","i":"{:.8}","r":"0.00006843","T":{}}}"#,
                    price * 1.0001,
                    price * 1.0004,
                    now_ms - now_ms.rem_euclid(28_800_000) + 28_800_000
                );
                (format!("{lower}@markPrice@1s"), data)
            }
        };
        let micros = now_ms.rem_euclid(1000) * 1000 + self.rng.random_range(0..1000);
        let id: u128 = self.rng.random();
        let _ = write!(
            out,
            r#"{{"stream":"{stream}","data":{data},"timestamp":"{}.{micros:06}Z","message_id":"{}","source":"binance-websocket","version":"1.0"}}"#,
            iso_seconds(now_ms),
            uuid_text(id)
        );
        out
    }

    fn levels(&mut self, out: &mut String, mid: f64, decimals: usize, side: f64) {
        for i in 0..20 {
            let price = mid * (1.0 + side * 0.0001 * f64::from(i + 1));
            let qty = self.rng.random_range(0.001..25.0);
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, r#"["{price:.decimals$}","{qty:.8}"]"#);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of an epoch-ms instant (UTC).
fn iso_seconds(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A UUID-v4-shaped text from 128 random bits.
fn uuid_text(bits: u128) -> String {
    let h = format!("{bits:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_bytes() {
        let a: Vec<_> = (0..50)
            .map(|_| 0)
            .scan(Mix::new(7), |m, _| {
                Some(m.next_message(1_761_055_392_345).2)
            })
            .collect();
        let b: Vec<_> = (0..50)
            .map(|_| 0)
            .scan(Mix::new(7), |m, _| {
                Some(m.next_message(1_761_055_392_345).2)
            })
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn shares_and_mean_size_match_the_production_mix() {
        let mut mix = Mix::new(1);
        let n = 20_000;
        let mut counts = std::collections::HashMap::new();
        let mut bytes = 0usize;
        for _ in 0..n {
            let (kind, _, body) = mix.next_message(1_761_055_392_345);
            *counts.entry(kind).or_insert(0usize) += 1;
            bytes += body.len();
        }
        let share = |k| counts.get(&k).copied().unwrap_or(0) as f64 / n as f64;
        assert!((share(Kind::Trade) - 0.60).abs() < 0.02, "{counts:?}");
        assert!((share(Kind::Depth) - 0.25).abs() < 0.02, "{counts:?}");
        assert!((share(Kind::Ticker) - 0.10).abs() < 0.015, "{counts:?}");
        assert!((share(Kind::Kline) - 0.04).abs() < 0.01, "{counts:?}");
        assert!((share(Kind::MarkPrice) - 0.01).abs() < 0.005, "{counts:?}");
        let mean = bytes / n;
        assert!((500..=720).contains(&mean), "mean size {mean}");
    }

    #[test]
    fn timestamps_render_in_utc() {
        assert_eq!(iso_seconds(1_761_055_392_345), "2025-10-21T14:03:12");
        assert_eq!(iso_seconds(0), "1970-01-01T00:00:00");
    }
}
