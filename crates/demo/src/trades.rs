//! The demo's `trades` table: the recent trades of one symbol, generated to match its 5m
//! candles exactly (count and volumes) and inserted the way the extractor inserts them, so the
//! server itself drops every trade that shares a millisecond with the one before it. The
//! auditor must report the loss (`trades_missing`, `trade_ms_collision`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::mysql::MySqlPool;
use store::trades::{BinanceTrade, insert_trades};

use crate::market::{Dataset, Fault, Generated};

/// Hours of trades, ending at the newest 5m candle: more than the auditor's 1 h trades window
/// and its 15 min lag.
pub const HOURS: i64 = 3;
/// Percent of trades that land in the same millisecond as the previous one (busy markets see
/// a large share of such bursts).
pub const SAME_MS_PERCENT: u64 = 15;
/// The first trade id (below 2³¹, so the ids fit the column and only millisecond collisions
/// remain).
const FIRST_TRADE_ID: i64 = 1_000_000_000;

/// What was seeded.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// Trades generated.
    pub generated: u64,
    /// Rows the server kept.
    pub kept: u64,
    /// The fault the auditor must report.
    pub fault: Fault,
}

/// The trades of the 5m candles of `d` from `from` on, with quantities and quote quantities
/// that add up to each candle's volumes exactly; about [`SAME_MS_PERCENT`] % share a
/// millisecond with the trade before them. Pure and deterministic.
pub fn generate(d: &Dataset, from: DateTime<Utc>) -> Vec<BinanceTrade> {
    let mut out = Vec::new();
    let mut id = FIRST_TRADE_ID;
    for k in d.rows.iter().filter(|k| k.open_time >= from) {
        let n = k.number_of_trades.max(0);
        if n == 0 {
            continue;
        }
        let step = (300_000 / n).max(1);
        let quantities = split(k.volume, n);
        let quotes = split(k.quote_asset_volume, n);
        let mut ms = k.open_time.timestamp_millis();
        for (j, (q, qq)) in quantities.into_iter().zip(quotes).enumerate() {
            let u = u64::try_from(id).unwrap_or(0).wrapping_mul(2_654_435_761) % 100;
            if j > 0 && u >= SAME_MS_PERCENT {
                ms += step.min(299_999 / n.max(1)).max(1);
            }
            let price = if q.is_zero() {
                k.close
            } else {
                (qq / q).round_dp(8)
            };
            out.push(BinanceTrade {
                trade_id: id,
                time_ms: ms,
                price,
                quantity: q,
                quote_quantity: qq,
                is_buyer_maker: id % 2 == 0,
            });
            id += 1;
        }
    }
    out
}

/// `total` in `n` parts of 8 decimals that add up to it exactly: n − 1 equal parts rounded
/// down, the last takes the rest.
fn split(total: Decimal, n: i64) -> Vec<Decimal> {
    let part = (total / Decimal::from(n)).trunc_with_scale(8);
    let mut v = vec![part; usize::try_from(n - 1).unwrap_or(0)];
    v.push(total - part * Decimal::from(n - 1));
    v
}

/// Generates and inserts the trades of the last [`HOURS`] of 5m candles of the first symbol
/// whose 5m series carries no injected fault (a gap or a stale end would blur the finding).
///
/// # Errors
/// MySQL refused an insert.
pub async fn seed(pool: &MySqlPool, data: &Generated) -> Result<Option<Seeded>, sqlx::Error> {
    let clean = |d: &&Dataset| {
        d.timeframe.label() == "5m"
            && !data
                .faults
                .iter()
                .any(|f| f.symbol == d.symbol && f.timeframe == "5m")
    };
    let Some(d) = data.datasets.iter().find(clean) else {
        return Ok(None);
    };
    let Some(last) = d.rows.last() else {
        return Ok(None);
    };
    let from = last.open_time - chrono::Duration::hours(HOURS);
    let trades = generate(d, from);
    let newest = last.open_time + chrono::Duration::minutes(6);
    let kept = insert_trades(pool, &d.symbol, &trades, newest).await?;
    let generated = u64::try_from(trades.len()).unwrap_or(u64::MAX);
    let dropped = generated.saturating_sub(kept);
    Ok(Some(Seeded {
        generated,
        kept,
        fault: Fault {
            kind: "ms_collision",
            check: "trade_ms_collision",
            symbol: d.symbol.clone(),
            timeframe: "trades",
            at: from,
            description: format!(
                "{generated} trades in {HOURS} h, {dropped} ({:.1}%) dropped by the millisecond id",
                100.0 * dropped as f64 / generated.max(1) as f64
            ),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_exactly() {
        let v = split("10.00000001".parse().expect("d"), 3);
        assert_eq!(v.len(), 3);
        assert_eq!(v.iter().sum::<Decimal>(), "10.00000001".parse().expect("d"));
        assert!(v.iter().all(|x| x.scale() <= 8));
    }

    #[test]
    fn about_the_stated_share_of_trades_repeat_a_millisecond() {
        let plan = crate::market::Plan {
            now: DateTime::from_timestamp(1_761_093_017, 0).expect("now"),
            symbols: vec!["BTCUSDT".into()],
            days: 2,
            fine_days: 1,
            seed: 7,
        };
        let data = crate::market::generate(&plan);
        let d = data
            .datasets
            .iter()
            .find(|d| d.timeframe.label() == "5m")
            .expect("5m");
        let from = d.rows.last().expect("rows").open_time - chrono::Duration::hours(HOURS);
        let t = generate(d, from);
        let expected: i64 = d
            .rows
            .iter()
            .filter(|k| k.open_time >= from)
            .map(|k| k.number_of_trades)
            .sum();
        assert_eq!(t.len() as i64, expected);
        let repeats = t
            .windows(2)
            .filter(|w| w[0].time_ms == w[1].time_ms)
            .count();
        let share = repeats as f64 / t.len() as f64;
        assert!((0.10..0.20).contains(&share), "{share}");
    }
}
