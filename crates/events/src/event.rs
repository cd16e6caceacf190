//! An accepted message: its kind, symbol, event time and typed payload.

use std::borrow::Cow;

use crate::kind::Kind;
use crate::payload::Payload;
use crate::symbol::{Symbol, SymbolSource};
use crate::{time, value};

/// An accepted message: kind, symbol, event time and typed payload, borrowing from the message
/// body where that is free (the envelope format is described in docs/envelope.md).
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Validated, upper-cased symbol.
    pub symbol: Symbol,
    /// Whether the symbol came from the payload or from the (often wrong) stream label.
    pub symbol_source: SymbolSource,
    /// Event time in epoch ms, `None` when the payload has no usable `E`/`T`. Callers that
    /// need a time use their receive time and must mark it as such.
    pub event_time_ms: Option<i64>,
    /// The envelope's `stream` label, as sent (informational only).
    pub stream: Option<Cow<'a, str>>,
    /// The typed payload.
    pub payload: Payload<'a>,
    /// How many known payload fields were present but did not read as their type
    /// (a price that is not a decimal, an id that is not an integer, …).
    pub malformed_fields: u16,
    pub(crate) producer_time: Option<&'a str>,
    pub(crate) message_id: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// The event kind.
    pub const fn kind(&self) -> Kind {
        self.payload.kind()
    }

    /// The socket client's receive time (`timestamp`), in epoch ms, when present and readable.
    /// Read on demand: classification never needs it.
    pub fn producer_time_ms(&self) -> Option<i64> {
        time::parse_utc_iso8601_ms(&value::string(self.producer_time?)?)
    }

    /// The envelope's `message_id`, when present and a string.
    pub fn message_id(&self) -> Option<Cow<'a, str>> {
        value::string(self.message_id?)
    }
}
