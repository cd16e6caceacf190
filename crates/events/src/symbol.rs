//! Trading symbols: validated, upper-cased, stored inline so counting by symbol never allocates.

use std::fmt;

/// Longest valid symbol: a symbol is 1 to 20 of `A-Z`, `0-9` and `_` (`^[A-Z0-9_]{1,20}$`).
pub const MAX_SYMBOL_LEN: usize = 20;

/// A validated symbol such as `BTCUSDT`. `Copy`, 21 bytes, no heap: it is a hash-map key on the
/// consumer's hot path.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

/// Where the symbol came from: the payload (or the envelope's `symbol`), or the
/// `stream` label's prefix, which is wrong for spot partial depth of every symbol but the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolSource {
    /// Payload `s`, payload `symbol` or top-level `symbol`.
    Payload,
    /// The text before the first `@` of `stream`.
    Stream,
}

impl SymbolSource {
    /// `payload` or `stream`, as in the fixtures.
    pub const fn as_str(self) -> &'static str {
        match self {
            SymbolSource::Payload => "payload",
            SymbolSource::Stream => "stream",
        }
    }
}

impl Symbol {
    /// Upper-cases `candidate` and validates it: 1–20 of `A-Z`, `0-9`, `_`, and not the
    /// sentinel `UNKNOWN` the old service stored messages without a symbol under. `None` when
    /// invalid.
    ///
    /// Case folding is ASCII-only, like the event-type match: Unicode upper-casing would turn
    /// look-alikes (`ﬀ` into `FF`, `ß` into `SS`) into valid symbols, so any non-ASCII
    /// candidate is invalid.
    pub fn parse(candidate: &str) -> Option<Symbol> {
        Self::from_ascii(candidate.as_bytes())
    }

    fn from_ascii(raw: &[u8]) -> Option<Symbol> {
        if raw.is_empty() || raw.len() > MAX_SYMBOL_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        for (slot, &b) in bytes.iter_mut().zip(raw) {
            let up = b.to_ascii_uppercase();
            if !(up.is_ascii_uppercase() || up.is_ascii_digit() || up == b'_') {
                return None;
            }
            *slot = up;
        }
        let symbol = Symbol {
            len: raw.len() as u8,
            bytes,
        };
        (symbol.as_str() != "UNKNOWN").then_some(symbol)
    }

    /// The symbol text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored (checked in `from_ascii`), so this cannot fail.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_symbol_is_upper_cased() {
        assert_eq!(
            Symbol::parse("ethusdt").map(|s| s.to_string()).as_deref(),
            Some("ETHUSDT")
        );
    }

    #[test]
    fn rejects_sentinel_empty_too_long_and_punctuation() {
        assert_eq!(Symbol::parse("UNKNOWN"), None);
        assert_eq!(Symbol::parse("unknown"), None);
        assert_eq!(Symbol::parse(""), None);
        assert_eq!(Symbol::parse("A".repeat(21).as_str()), None);
        assert_eq!(Symbol::parse("BTC-USDT"), None);
        assert_eq!(Symbol::parse("BTC USDT"), None);
    }

    #[test]
    fn accepts_twenty_chars_digits_and_underscore() {
        let s = Symbol::parse("1000SHIB_USDT_250328").map(|s| s.to_string());
        assert_eq!(s.as_deref(), Some("1000SHIB_USDT_250328"));
    }

    #[test]
    fn case_folding_is_ascii_only() {
        assert_eq!(
            Symbol::parse("btc\u{FB00}"),
            None,
            "no Unicode upper-casing"
        );
        assert_eq!(Symbol::parse("stra\u{DF}e"), None);
        assert_eq!(Symbol::parse("bté"), None);
        assert_eq!(
            Symbol::parse("btcUsdt").map(|s| s.to_string()).as_deref(),
            Some("BTCUSDT")
        );
    }
}
