//! Typed readings of captured raw JSON values: strings, integers, booleans, decimals.
//!
//! Each function answers `None` when the value has another JSON type, so a caller can tell
//! "absent" (no slot) from "malformed" (a slot that does not read).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::decimal::Decimal;

/// A JSON string's contents: borrowed when it has no escapes, decoded (owned) when it has.
pub(crate) fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.as_bytes().contains(&b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A JSON integer (no fraction, no exponent) that fits an `i64`.
pub(crate) fn int(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A non-negative JSON integer that fits a `u64` (ids).
pub(crate) fn uint(raw: &RawValue) -> Option<u64> {
    let text = raw.get();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A JSON `true` or `false`.
pub(crate) fn boolean(raw: &RawValue) -> Option<bool> {
    match raw.get() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A decimal sent as a JSON string (Binance's form) or, leniently, as a plain JSON number,
/// whose text is already an exact decimal.
pub(crate) fn decimal(raw: &RawValue) -> Option<Decimal<'_>> {
    let text = raw.get();
    if text.starts_with('"') {
        Decimal::parse(string(raw)?)
    } else {
        Decimal::parse(Cow::Borrowed(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).expect("valid JSON in test")
    }

    #[test]
    fn plain_string_is_borrowed_and_escaped_string_decoded() {
        let plain = raw(r#""BTCUSDT""#);
        assert!(matches!(string(&plain), Some(Cow::Borrowed("BTCUSDT"))));
        let escaped = raw(r#""BTC\u0055SDT""#);
        assert!(matches!(string(&escaped), Some(Cow::Owned(ref s)) if s == "BTCUSDT"));
        assert_eq!(string(&raw("12")), None);
    }

    #[test]
    fn integers_reject_fractions_strings_and_overflow() {
        assert_eq!(int(&raw("1761055392345")), Some(1_761_055_392_345));
        assert_eq!(int(&raw("-5")), Some(-5));
        assert_eq!(int(&raw("1.0")), None);
        assert_eq!(int(&raw("1e3")), None);
        assert_eq!(int(&raw(r#""17""#)), None);
        assert_eq!(int(&raw("99999999999999999999")), None);
        assert_eq!(uint(&raw("-1")), None);
        assert_eq!(uint(&raw("18446744073709551615")), Some(u64::MAX));
    }

    #[test]
    fn booleans_and_decimals() {
        assert_eq!(boolean(&raw("true")), Some(true));
        assert_eq!(boolean(&raw("1")), None);
        assert_eq!(
            decimal(&raw(r#""0.10""#)).map(|d| d.to_string()).as_deref(),
            Some("0.10")
        );
        assert_eq!(
            decimal(&raw("42.5")).map(|d| d.to_string()).as_deref(),
            Some("42.5")
        );
        assert!(decimal(&raw(r#""abc""#)).is_none());
        assert!(decimal(&raw("null")).is_none());
    }
}
