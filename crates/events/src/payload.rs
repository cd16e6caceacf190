//! Typed payloads, one struct per kind, built from captured fields after classification.
//!
//! Every field is an `Option`: Binance payloads vary by venue and version, and a missing field
//! is never a reason to reject a message. A field that is present but does
//! not read as its type is `None` too, and is counted in [`Event::malformed_fields`](crate::Event::malformed_fields),
//! so defects in the traffic stay visible instead of silently disappearing.

use std::borrow::Cow;

use crate::decimal::Decimal;
use crate::kind::{EventType, Kind};
use crate::levels::Levels;
use crate::scan::{self, Fields, Key};
use crate::value;

/// The typed payload of an accepted event.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload<'a> {
    /// `trade` or `aggTrade`.
    Trade(Trade<'a>),
    /// `24hrTicker` or `24hrMiniTicker`.
    Ticker(Ticker<'a>),
    /// Any of the three depth shapes.
    Depth(Depth<'a>),
    /// A candle update.
    Kline(Kline<'a>),
    /// Mark price and funding.
    MarkPrice(MarkPrice<'a>),
}

impl Payload<'_> {
    /// The event kind of this payload.
    pub const fn kind(&self) -> Kind {
        match self {
            Payload::Trade(_) => Kind::Trade,
            Payload::Ticker(_) => Kind::Ticker,
            Payload::Depth(_) => Kind::Depth,
            Payload::Kline(_) => Kind::Kline,
            Payload::MarkPrice(_) => Kind::MarkPrice,
        }
    }
}

/// A trade (`@trade`) or aggregate trade (`@aggTrade`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade<'a> {
    /// True for `aggTrade`.
    pub aggregate: bool,
    /// `t`: trade id (an id, never a time). Plain trades only.
    pub trade_id: Option<u64>,
    /// `a`: aggregate trade id. Aggregate trades only.
    pub aggregate_id: Option<u64>,
    /// `f`: first trade id. Aggregate trades only.
    pub first_trade_id: Option<u64>,
    /// `l`: last trade id. Aggregate trades only.
    pub last_trade_id: Option<u64>,
    /// `p`: price.
    pub price: Option<Decimal<'a>>,
    /// `q`: quantity.
    pub quantity: Option<Decimal<'a>>,
    /// `T`: trade time (epoch ms).
    pub trade_time_ms: Option<i64>,
    /// `m`: the buyer is the maker.
    pub buyer_is_maker: Option<bool>,
    /// `b`: buyer order id (older plain-trade payloads).
    pub buyer_order_id: Option<u64>,
    /// `a`: seller order id (older plain-trade payloads).
    pub seller_order_id: Option<u64>,
}

/// A 24 h ticker (`@ticker`) or mini ticker (`@miniTicker`). The futures ticker and
/// the mini ticker lack the best bid/ask and previous close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticker<'a> {
    /// True for `24hrMiniTicker`.
    pub mini: bool,
    /// `p`: price change.
    pub price_change: Option<Decimal<'a>>,
    /// `P`: price change percent.
    pub price_change_percent: Option<Decimal<'a>>,
    /// `w`: weighted average price.
    pub weighted_avg_price: Option<Decimal<'a>>,
    /// `x`: previous close.
    pub prev_close_price: Option<Decimal<'a>>,
    /// `c`: last price.
    pub last_price: Option<Decimal<'a>>,
    /// `Q`: last quantity.
    pub last_quantity: Option<Decimal<'a>>,
    /// `b`: best bid price.
    pub best_bid_price: Option<Decimal<'a>>,
    /// `B`: best bid quantity.
    pub best_bid_quantity: Option<Decimal<'a>>,
    /// `a`: best ask price.
    pub best_ask_price: Option<Decimal<'a>>,
    /// `A`: best ask quantity.
    pub best_ask_quantity: Option<Decimal<'a>>,
    /// `o`: open price of the window.
    pub open_price: Option<Decimal<'a>>,
    /// `h`: high.
    pub high_price: Option<Decimal<'a>>,
    /// `l`: low.
    pub low_price: Option<Decimal<'a>>,
    /// `v`: base asset volume.
    pub base_volume: Option<Decimal<'a>>,
    /// `q`: quote asset volume.
    pub quote_volume: Option<Decimal<'a>>,
    /// `O`: window open time (epoch ms).
    pub open_time_ms: Option<i64>,
    /// `C`: window close time (epoch ms).
    pub close_time_ms: Option<i64>,
    /// `F`: first trade id.
    pub first_trade_id: Option<u64>,
    /// `L`: last trade id.
    pub last_trade_id: Option<u64>,
    /// `n`: number of trades.
    pub trade_count: Option<u64>,
}

/// Which depth message this is. Told apart by payload shape, never by the stream label, which
/// the socket client gives all three the same suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DepthShape {
    /// Spot partial book (`@depth20`): no `e`, no `s`, no `E`; `lastUpdateId`, `bids`, `asks`.
    Snapshot,
    /// Futures partial depth: `depthUpdate` with `pu`.
    FuturesPartial,
    /// Diff depth: `depthUpdate` without `pu`. A zero quantity removes the level.
    Diff,
}

/// A depth message. Price levels stay unparsed until iterated: counting a depth20 message must
/// not materialise its 40 levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depth<'a> {
    /// The shape this message has.
    pub shape: DepthShape,
    /// `lastUpdateId` (snapshot).
    pub last_update_id: Option<u64>,
    /// `U`: first update id in the event.
    pub first_update_id: Option<u64>,
    /// `u`: final update id in the event.
    pub final_update_id: Option<u64>,
    /// `pu`: previous final update id (futures).
    pub prev_final_update_id: Option<u64>,
    /// `T`: transaction time (futures, epoch ms).
    pub transaction_time_ms: Option<i64>,
    /// `bids` or `b`.
    pub bids: Levels<'a>,
    /// `asks` or `a`.
    pub asks: Levels<'a>,
}

/// A candle update (`@kline_<i>`). The interval comes from `k.i`, never the stream label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kline<'a> {
    /// `k.t`: open time (epoch ms).
    pub open_time_ms: Option<i64>,
    /// `k.T`: close time (open + interval − 1 ms).
    pub close_time_ms: Option<i64>,
    /// `k.i`: interval, e.g. `1h`.
    pub interval: Option<Cow<'a, str>>,
    /// `k.f`: first trade id.
    pub first_trade_id: Option<u64>,
    /// `k.L`: last trade id.
    pub last_trade_id: Option<u64>,
    /// `k.o`.
    pub open: Option<Decimal<'a>>,
    /// `k.h`.
    pub high: Option<Decimal<'a>>,
    /// `k.l`.
    pub low: Option<Decimal<'a>>,
    /// `k.c`.
    pub close: Option<Decimal<'a>>,
    /// `k.v`: base volume.
    pub volume: Option<Decimal<'a>>,
    /// `k.q`: quote volume.
    pub quote_volume: Option<Decimal<'a>>,
    /// `k.V`: taker buy base volume.
    pub taker_buy_base_volume: Option<Decimal<'a>>,
    /// `k.Q`: taker buy quote volume.
    pub taker_buy_quote_volume: Option<Decimal<'a>>,
    /// `k.n`: number of trades.
    pub trade_count: Option<u64>,
    /// `k.x`: the candle is closed (false while it is still forming).
    pub closed: Option<bool>,
}

/// Mark price and funding (`@markPrice@1s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkPrice<'a> {
    /// `p`: mark price.
    pub mark_price: Option<Decimal<'a>>,
    /// `P`: estimated settle price.
    pub estimated_settle_price: Option<Decimal<'a>>,
    /// `i`: index price.
    pub index_price: Option<Decimal<'a>>,
    /// `r`: funding rate.
    pub funding_rate: Option<Decimal<'a>>,
    /// `T`: next funding time (a future instant, not an event time).
    pub next_funding_time_ms: Option<i64>,
}

/// Reads typed fields out of captured raw values, counting the ones present but malformed.
pub(crate) struct Reader<'f, 'a> {
    fields: &'f Fields<'a>,
    pub(crate) malformed: u16,
}

impl<'f, 'a> Reader<'f, 'a> {
    pub(crate) fn new(fields: &'f Fields<'a>) -> Self {
        Reader {
            fields,
            malformed: 0,
        }
    }

    fn read<T>(&mut self, key: Key, conv: impl FnOnce(&'a str) -> Option<T>) -> Option<T> {
        let raw = self.fields.get(key)?;
        let value = conv(raw);
        if value.is_none() {
            self.malformed = self.malformed.saturating_add(1);
        }
        value
    }

    fn decimal(&mut self, key: Key) -> Option<Decimal<'a>> {
        self.read(key, value::decimal)
    }

    fn uint(&mut self, key: Key) -> Option<u64> {
        self.read(key, value::uint)
    }

    fn int(&mut self, key: Key) -> Option<i64> {
        self.read(key, value::int)
    }

    fn boolean(&mut self, key: Key) -> Option<bool> {
        self.read(key, value::boolean)
    }

    fn string(&mut self, key: Key) -> Option<Cow<'a, str>> {
        self.read(key, value::string)
    }

    /// Price levels; a required side that is missing counts as malformed too.
    fn levels(&mut self, key: Key) -> Levels<'a> {
        if !self.fields.has(key) {
            self.malformed = self.malformed.saturating_add(1);
        }
        self.read(key, Levels::from_raw).unwrap_or_default()
    }

    /// Builds the payload for a classified event type (`None` = the spot partial-depth shape).
    pub(crate) fn payload(&mut self, event_type: Option<EventType>) -> Payload<'a> {
        match event_type {
            Some(t @ (EventType::Trade | EventType::AggTrade)) => {
                Payload::Trade(self.trade(t == EventType::AggTrade))
            }
            Some(t @ (EventType::Ticker24h | EventType::MiniTicker24h)) => {
                Payload::Ticker(self.ticker(t == EventType::MiniTicker24h))
            }
            Some(EventType::DepthUpdate) => Payload::Depth(self.depth_update()),
            None => Payload::Depth(self.depth_snapshot()),
            Some(EventType::Kline) => Payload::Kline(self.kline()),
            Some(EventType::MarkPriceUpdate) => Payload::MarkPrice(self.mark_price()),
        }
    }

    fn trade(&mut self, aggregate: bool) -> Trade<'a> {
        let (
            trade_id,
            aggregate_id,
            first_trade_id,
            last_trade_id,
            buyer_order_id,
            seller_order_id,
        ) = if aggregate {
            let a = self.uint(Key::LowerA);
            let f = self.uint(Key::LowerF);
            let l = self.uint(Key::LowerL);
            (None, a, f, l, None, None)
        } else {
            let t = self.uint(Key::LowerT);
            let b = self.uint(Key::LowerB);
            let a = self.uint(Key::LowerA);
            (t, None, None, None, b, a)
        };
        Trade {
            aggregate,
            trade_id,
            aggregate_id,
            first_trade_id,
            last_trade_id,
            price: self.decimal(Key::LowerP),
            quantity: self.decimal(Key::LowerQ),
            trade_time_ms: self.int(Key::UpperT),
            buyer_is_maker: self.boolean(Key::LowerM),
            buyer_order_id,
            seller_order_id,
        }
    }

    fn ticker(&mut self, mini: bool) -> Ticker<'a> {
        Ticker {
            mini,
            price_change: self.decimal(Key::LowerP),
            price_change_percent: self.decimal(Key::UpperP),
            weighted_avg_price: self.decimal(Key::LowerW),
            prev_close_price: self.decimal(Key::LowerX),
            last_price: self.decimal(Key::LowerC),
            last_quantity: self.decimal(Key::UpperQ),
            best_bid_price: self.decimal(Key::LowerB),
            best_bid_quantity: self.decimal(Key::UpperB),
            best_ask_price: self.decimal(Key::LowerA),
            best_ask_quantity: self.decimal(Key::UpperA),
            open_price: self.decimal(Key::LowerO),
            high_price: self.decimal(Key::LowerH),
            low_price: self.decimal(Key::LowerL),
            base_volume: self.decimal(Key::LowerV),
            quote_volume: self.decimal(Key::LowerQ),
            open_time_ms: self.int(Key::UpperO),
            close_time_ms: self.int(Key::UpperC),
            first_trade_id: self.uint(Key::UpperF),
            last_trade_id: self.uint(Key::UpperL),
            trade_count: self.uint(Key::LowerN),
        }
    }

    fn depth_snapshot(&mut self) -> Depth<'a> {
        Depth {
            shape: DepthShape::Snapshot,
            last_update_id: self.uint(Key::LastUpdateId),
            first_update_id: None,
            final_update_id: None,
            prev_final_update_id: None,
            transaction_time_ms: None,
            bids: self.levels(Key::Bids),
            asks: self.levels(Key::Asks),
        }
    }

    fn depth_update(&mut self) -> Depth<'a> {
        let prev_final_update_id = self.uint(Key::Pu);
        Depth {
            shape: if self.fields.has(Key::Pu) {
                DepthShape::FuturesPartial
            } else {
                DepthShape::Diff
            },
            last_update_id: None,
            first_update_id: self.uint(Key::UpperU),
            final_update_id: self.uint(Key::LowerU),
            prev_final_update_id,
            transaction_time_ms: self.int(Key::UpperT),
            bids: self.levels(Key::LowerB),
            asks: self.levels(Key::LowerA),
        }
    }

    fn kline(&mut self) -> Kline<'a> {
        let k = match self.fields.get(Key::LowerK).map(scan::scan_object) {
            Some(Some(k)) => k,
            _ => {
                // `k` missing or not an object: the candle itself is malformed.
                self.malformed = self.malformed.saturating_add(1);
                Fields::empty("")
            }
        };
        let mut inner = Reader::new(&k);
        let kline = Kline {
            open_time_ms: inner.int(Key::LowerT),
            close_time_ms: inner.int(Key::UpperT),
            interval: inner.string(Key::LowerI),
            first_trade_id: inner.uint(Key::LowerF),
            last_trade_id: inner.uint(Key::UpperL),
            open: inner.decimal(Key::LowerO),
            high: inner.decimal(Key::LowerH),
            low: inner.decimal(Key::LowerL),
            close: inner.decimal(Key::LowerC),
            volume: inner.decimal(Key::LowerV),
            quote_volume: inner.decimal(Key::LowerQ),
            taker_buy_base_volume: inner.decimal(Key::UpperV),
            taker_buy_quote_volume: inner.decimal(Key::UpperQ),
            trade_count: inner.uint(Key::LowerN),
            closed: inner.boolean(Key::LowerX),
        };
        self.malformed = self.malformed.saturating_add(inner.malformed);
        kline
    }

    fn mark_price(&mut self) -> MarkPrice<'a> {
        MarkPrice {
            mark_price: self.decimal(Key::LowerP),
            estimated_settle_price: self.decimal(Key::UpperP),
            index_price: self.decimal(Key::LowerI),
            funding_rate: self.decimal(Key::LowerR),
            next_funding_time_ms: self.int(Key::UpperT),
        }
    }
}
