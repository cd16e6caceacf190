//! Typed readings of captured JSON value text: strings, integers, booleans, decimals.
//!
//! The input is always the exact text of one valid JSON value (checked by `scan`).
//!
//! Each function answers `None` when the value has another JSON type, so a caller can tell
//! "absent" (no slot) from "malformed" (a slot that does not read).

use std::borrow::Cow;

use crate::decimal::Decimal;

/// A JSON string's contents: borrowed when it has no escapes, decoded (owned) when it has.
pub(crate) fn string(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.as_bytes().contains(&b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A JSON integer (no fraction, no exponent) that fits an `i64`.
pub(crate) fn int(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(digits) => {
            let magnitude = uint(digits)?;
            0i64.checked_sub_unsigned(magnitude)
        }
        None => i64::try_from(uint(text)?).ok(),
    }
}

/// A non-negative JSON integer that fits a `u64` (ids). One pass, no intermediate checks:
/// this runs several times per message.
pub(crate) fn uint(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A JSON `true` or `false`.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A decimal sent as a JSON string (Binance's form) or, leniently, as a plain JSON number,
/// whose text is already an exact decimal.
pub(crate) fn decimal(text: &str) -> Option<Decimal<'_>> {
    if text.starts_with('"') {
        Decimal::parse(string(text)?)
    } else {
        Decimal::parse(Cow::Borrowed(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_string_is_borrowed_and_escaped_string_decoded() {
        let plain = r#""BTCUSDT""#;
        assert!(matches!(string(plain), Some(Cow::Borrowed("BTCUSDT"))));
        let escaped = r#""BTC\u0055SDT""#;
        assert!(matches!(string(escaped), Some(Cow::Owned(ref s)) if s == "BTCUSDT"));
        assert_eq!(string("12"), None);
    }

    #[test]
    fn integers_reject_fractions_strings_and_overflow() {
        assert_eq!(int("1761055392345"), Some(1_761_055_392_345));
        assert_eq!(int("-5"), Some(-5));
        assert_eq!(int("1.0"), None);
        assert_eq!(int("1e3"), None);
        assert_eq!(int(r#""17""#), None);
        assert_eq!(int("99999999999999999999"), None);
        assert_eq!(uint("-1"), None);
        assert_eq!(uint("18446744073709551615"), Some(u64::MAX));
    }

    #[test]
    fn booleans_and_decimals() {
        assert_eq!(boolean("true"), Some(true));
        assert_eq!(boolean("1"), None);
        assert_eq!(
            decimal(r#""0.10""#).map(|d| d.to_string()).as_deref(),
            Some("0.10")
        );
        assert_eq!(
            decimal("42.5").map(|d| d.to_string()).as_deref(),
            Some("42.5")
        );
        assert!(decimal(r#""abc""#).is_none());
        assert!(decimal("null").is_none());
    }
}
