//! The closed set of event kinds, decided once from the payload (never from the `stream` label).

use std::fmt;

/// What an accepted message is, decided from the payload's `e` (or its shape), never from the
/// `stream` label. The names equal the `event_type` label values of the old service's metrics,
/// so dashboards keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `trade` and `aggTrade`.
    Trade,
    /// `24hrTicker` and `24hrMiniTicker`.
    Ticker,
    /// Spot partial book snapshot, futures partial depth and diff depth.
    Depth,
    /// Candle updates.
    Kline,
    /// `markPriceUpdate` (mark price and funding).
    MarkPrice,
}

impl Kind {
    /// Every kind, in a fixed order (the index of a kind in this array is [`Kind::index`]).
    pub const ALL: [Kind; 5] = [
        Kind::Trade,
        Kind::Ticker,
        Kind::Depth,
        Kind::Kline,
        Kind::MarkPrice,
    ];

    /// The canonical name, used as a metric label value and a JSON key.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Trade => "trade",
            Kind::Ticker => "ticker",
            Kind::Depth => "depth",
            Kind::Kline => "kline",
            Kind::MarkPrice => "markPrice",
        }
    }

    /// A dense index in `0..Kind::ALL.len()`, for per-kind arrays on hot paths.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Binance `e` values we understand, compared ASCII case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Trade,
    AggTrade,
    DepthUpdate,
    Ticker24h,
    MiniTicker24h,
    Kline,
    MarkPriceUpdate,
}

impl EventType {
    /// Maps a Binance `e` string. Comparison is ASCII case-insensitive: every listed name is
    /// ASCII, and Unicode case folding would let look-alike letters (the Kelvin sign for `k`)
    /// smuggle in a kind.
    pub(crate) fn from_e(e: &str) -> Option<EventType> {
        const TABLE: [(&str, EventType); 7] = [
            ("trade", EventType::Trade),
            ("aggTrade", EventType::AggTrade),
            ("depthUpdate", EventType::DepthUpdate),
            ("24hrTicker", EventType::Ticker24h),
            ("24hrMiniTicker", EventType::MiniTicker24h),
            ("kline", EventType::Kline),
            ("markPriceUpdate", EventType::MarkPriceUpdate),
        ];
        TABLE
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(e))
            .map(|&(_, t)| t)
    }

    pub(crate) const fn kind(self) -> Kind {
        match self {
            EventType::Trade | EventType::AggTrade => Kind::Trade,
            EventType::DepthUpdate => Kind::Depth,
            EventType::Ticker24h | EventType::MiniTicker24h => Kind::Ticker,
            EventType::Kline => Kind::Kline,
            EventType::MarkPriceUpdate => Kind::MarkPrice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_is_matched_case_insensitively() {
        assert_eq!(EventType::from_e("AGGTRADE"), Some(EventType::AggTrade));
        assert_eq!(
            EventType::from_e("24hrminiticker"),
            Some(EventType::MiniTicker24h)
        );
        assert_eq!(EventType::from_e("forceOrder"), None);
        assert_eq!(EventType::from_e(""), None);
    }

    #[test]
    fn kelvin_sign_does_not_fold_into_kline() {
        assert_eq!(EventType::from_e("\u{212A}line"), None);
    }

    #[test]
    fn index_matches_position_in_all() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
