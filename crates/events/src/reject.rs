//! Why a message was rejected: a small closed set of countable reasons, plus the detail behind each.

use std::fmt;

/// Why a message was rejected: one of four reasons, counted and never persisted (see
/// docs/envelope.md). `as_str` is the only way back to a string: it
/// feeds metric labels and the stats line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Empty, not UTF-8, not JSON, or top-level JSON that is not an object.
    InvalidJson,
    /// `data` is present but `null` or not an object.
    NoPayload,
    /// An unlisted `e`, or no `e` and not the partial-depth shape.
    UnknownKind,
    /// A known kind without a valid symbol.
    NoSymbol,
}

impl RejectReason {
    /// Every reason, in a fixed order (the index of a reason here is [`RejectReason::index`]).
    pub const ALL: [RejectReason; 4] = [
        RejectReason::InvalidJson,
        RejectReason::NoPayload,
        RejectReason::UnknownKind,
        RejectReason::NoSymbol,
    ];

    /// The label value (`invalid_json`, `no_payload`, `unknown_kind`, `no_symbol`).
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::NoPayload => "no_payload",
            RejectReason::UnknownKind => "unknown_kind",
            RejectReason::NoSymbol => "no_symbol",
        }
    }

    /// A dense index in `0..RejectReason::ALL.len()`.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest excerpt of untrusted text kept in a [`Reject`]; enough to recognise, never a log storm.
pub const MAX_DETAIL_CHARS: usize = 64;

/// A rejected message, with enough detail to explain it. Rejects are the cold path, so the
/// detail may allocate; the text it quotes is truncated to [`MAX_DETAIL_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The body is not a UTF-8 JSON object.
    #[error("invalid_json: {0}")]
    InvalidJson(String),
    /// `data` is present but holds `found` instead of an object.
    #[error("no_payload: `data` is {found}")]
    NoPayload {
        /// The JSON type found (`null`, `string`, `array`, …).
        found: &'static str,
    },
    /// The payload's kind is not one we know.
    #[error("unknown_kind: e={e:?}")]
    UnknownKind {
        /// The payload's `e` when it is a string (truncated), `None` when absent or not a string.
        e: Option<String>,
    },
    /// The kind is known but no candidate yields a valid symbol.
    #[error("no_symbol: candidate={candidate:?}")]
    NoSymbol {
        /// The candidate that was chosen and failed validation (truncated), if any.
        candidate: Option<String>,
    },
}

impl Reject {
    /// The countable reason.
    pub const fn reason(&self) -> RejectReason {
        match self {
            Reject::InvalidJson(_) => RejectReason::InvalidJson,
            Reject::NoPayload { .. } => RejectReason::NoPayload,
            Reject::UnknownKind { .. } => RejectReason::UnknownKind,
            Reject::NoSymbol { .. } => RejectReason::NoSymbol,
        }
    }
}

/// Cuts untrusted text to [`MAX_DETAIL_CHARS`] characters, marking the cut.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_labels_are_the_four_documented_names() {
        let labels: Vec<_> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            ["invalid_json", "no_payload", "unknown_kind", "no_symbol"]
        );
    }

    #[test]
    fn excerpt_truncates_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_DETAIL_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
