//! Typed, total parsing of the market-data envelopes the socket client publishes on NATS.
//!
//! [`parse`] implements the envelope grammar and reject rules (docs/envelope.md) in one pass
//! over the bytes: every input yields an [`Event`] or a [`Reject`] with one of four countable
//! [`RejectReason`]s, and no input panics. Prices stay exact ([`Decimal`] text, borrowed from
//! the body where there are no escapes) and depth levels stay unparsed until iterated.
//!
//! # Choices where the envelope format is silent
//! - **Nesting**: at most 127 levels, the top-level object counting as 1 (serde_json's limit);
//!   deeper is `invalid_json`.
//! - **Lone surrogates**: a `\uD800`–`\uDFFF` escape that is not half of a pair is
//!   `invalid_json`, in keys and values alike (serde_json's verdict when it decodes a string).
//! - **Event times**: `E`/`T` must be JSON integers that fit an `i64`; anything else (a float,
//!   a string, an integer beyond `i64`) is treated as absent, never a reject.
//! - **`"e": null`** (or any non-string `e`) names no kind: `unknown_kind`, even when the
//!   payload has the depth-snapshot shape.
//! - **Case folding** of symbols and event types is ASCII-only: a non-ASCII symbol is invalid
//!   (`no_symbol`), so look-alike letters can never fold into a valid symbol.
//!
//! # Layout
//! - `parse`: the algorithm (payload, kind, symbol, event time), pure.
//! - `scan`: the one-pass scan that captures known keys as raw JSON slices.
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

mod decimal;
mod event;
mod kind;
mod levels;
mod parse;
mod payload;
mod reject;
mod scan;
mod symbol;
mod time;
mod value;

pub use decimal::Decimal;
pub use event::Event;
pub use kind::Kind;
pub use levels::{Level, LevelError, Levels, LevelsIter};
pub use parse::{MIN_PLAUSIBLE_EVENT_TIME_MS, parse};
pub use payload::{Depth, DepthShape, Kline, MarkPrice, Payload, Ticker, Trade};
pub use reject::{MAX_DETAIL_CHARS, Reject, RejectReason};
pub use symbol::{MAX_SYMBOL_LEN, Symbol, SymbolSource};
