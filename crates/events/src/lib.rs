//! Typed, total parsing of the market-data envelopes the socket client publishes on NATS.
//!
//! [`parse`] implements the normative algorithm of `wire-format.md` §4 in one pass over the
//! bytes: every input yields an [`Event`] or a [`Reject`] with one of four countable
//! [`RejectReason`]s, and no input panics. Prices stay exact ([`Decimal`] text, borrowed from
//! the body where there are no escapes) and depth levels stay unparsed until iterated.
//!
//! # Layout
//! - `parse`: the algorithm (payload, kind, symbol, event time), pure.
//! - `wire`: the one-pass serde scan that captures known keys as raw JSON slices.
//! - `payload`, `levels`: typed payload structs built from the captured slices.
//! - `kind`, `symbol`, `decimal`, `reject`: the domain types.
//!
//! ```
//! let body = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1761055392345,"s":"BTCUSDT","p":"1.50","q":"2"}}"#;
//! let event = events::parse(body).expect("a trade");
//! assert_eq!(event.kind(), events::Kind::Trade);
//! assert_eq!(event.symbol.as_str(), "BTCUSDT");
//! assert_eq!(event.event_time_ms, Some(1761055392345));
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod decimal;
mod event;
mod kind;
mod levels;
mod parse;
mod payload;
mod reject;
mod symbol;
mod time;
mod value;
mod wire;

pub use decimal::Decimal;
pub use event::Event;
pub use kind::Kind;
pub use levels::{Level, LevelError, Levels, LevelsIter};
pub use parse::{MIN_PLAUSIBLE_EVENT_TIME_MS, parse};
pub use payload::{Depth, DepthShape, Kline, MarkPrice, Payload, Ticker, Trade};
pub use reject::{MAX_DETAIL_CHARS, Reject, RejectReason};
pub use symbol::{MAX_SYMBOL_LEN, Symbol, SymbolSource};
