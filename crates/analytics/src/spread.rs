//! Spread from an order-book snapshot. Disabled by default (`ANALYTICS_SPREAD_SOURCE=none`): no
//! source writes order books, so the service never calls this; it is kept, tested, for when a
//! source is specified.

use crate::metric::{Kind, Metadata, MetricDoc, num_or_null, object};

/// One price level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Price.
    pub price: f64,
    /// Quantity.
    pub quantity: f64,
}

/// The computed values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// best ask − best bid.
    pub bid_ask_spread: f64,
    /// spread / mid × 100.
    pub spread_percentage: f64,
    /// Σ bid quantity with price ≥ 0.99·mid.
    pub market_depth_bid: f64,
    /// Σ ask quantity with price ≤ 1.01·mid.
    pub market_depth_ask: f64,
    /// (VWAP of buying 1.0 up the asks − mid) / mid × 100 (NaN when the asks hold less).
    pub slippage_estimate: f64,
    /// The number of bid levels.
    pub depth_levels: usize,
}

/// Computes the spread, depth and slippage estimate; `None` when either side is empty. Bids best
/// first (descending), asks best first (ascending).
pub fn compute(bids: &[Level], asks: &[Level]) -> Option<Spread> {
    let (bid, ask) = (bids.first()?.price, asks.first()?.price);
    let spread = ask - bid;
    let mid = (bid + ask) / 2.0;
    let mut left = 1.0;
    let mut cost = 0.0;
    for a in asks {
        let take = a.quantity.min(left);
        cost += take * a.price;
        left -= take;
        if left <= 0.0 {
            break;
        }
    }
    let slippage = if left <= 0.0 {
        (cost / 1.0 - mid) / mid * 100.0
    } else {
        f64::NAN
    };
    Some(Spread {
        bid_ask_spread: spread,
        spread_percentage: spread / mid * 100.0,
        market_depth_bid: bids
            .iter()
            .filter(|l| l.price >= 0.99 * mid)
            .map(|l| l.quantity)
            .sum(),
        market_depth_ask: asks
            .iter()
            .filter(|l| l.price <= 1.01 * mid)
            .map(|l| l.quantity)
            .sum(),
        slippage_estimate: slippage,
        depth_levels: bids.len(),
    })
}

impl Spread {
    /// The document (no timeframe; timestamp = the snapshot time).
    pub fn doc(&self, timestamp: chrono::DateTime<chrono::Utc>) -> MetricDoc {
        MetricDoc {
            kind: Kind::Spread,
            timestamp,
            fields: object([
                ("bid_ask_spread", num_or_null(self.bid_ask_spread)),
                ("spread_percentage", num_or_null(self.spread_percentage)),
                ("market_depth_bid", num_or_null(self.market_depth_bid)),
                ("market_depth_ask", num_or_null(self.market_depth_ask)),
                ("liquidity_ratio", 0.0.into()),
                ("slippage_estimate", num_or_null(self.slippage_estimate)),
            ]),
            metadata: Metadata {
                method: "order_book_analysis",
                window: "snapshot",
                parameters: object([("depth_levels", self.depth_levels.into())]),
                completeness: 100.0,
                options: object([("spread_source", "none".into())]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(price: f64, quantity: f64) -> Level {
        Level { price, quantity }
    }

    #[test]
    fn spread_depth_and_slippage_from_a_small_book() {
        let bids = [l(99.0, 1.0), l(98.5, 2.0), l(90.0, 5.0)];
        let asks = [l(101.0, 0.5), l(102.0, 1.0), l(120.0, 3.0)];
        let s = compute(&bids, &asks).expect("both sides");
        assert_eq!(s.bid_ask_spread, 2.0);
        assert_eq!(s.spread_percentage, 2.0);
        assert_eq!(s.market_depth_bid, 1.0, "98.5 is below 0.99·mid = 99");
        assert_eq!(s.market_depth_ask, 0.5);
        // Buy 0.5 @ 101 + 0.5 @ 102 = 101.5; (101.5 − 100) / 100 × 100.
        assert!((s.slippage_estimate - 1.5).abs() < 1e-12);
        assert_eq!(s.depth_levels, 3);
    }

    #[test]
    fn an_empty_side_gives_nothing() {
        assert_eq!(compute(&[], &[l(1.0, 1.0)]), None);
    }
}
