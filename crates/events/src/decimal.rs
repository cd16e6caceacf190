//! Exact decimal numbers as they arrive on the wire: text, never a lossy float.

use std::borrow::Cow;
use std::fmt;

/// A decimal number kept as its exact text (`"108234.56000000"`), borrowed from the message
/// when it has no JSON escapes. Convert to a float or a fixed-point type only where a number is
/// needed, and explicitly: a binary float would silently change the exchange's exact values.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Decimal<'a>(Cow<'a, str>);

impl<'a> Decimal<'a> {
    /// Accepts `-?[0-9]+(\.[0-9]+)?`: the only form Binance sends. Exponents, `+`, `NaN`, empty
    /// text and stray spaces are malformed, so `None`.
    pub fn parse(text: Cow<'a, str>) -> Option<Decimal<'a>> {
        is_plain_decimal(text.as_bytes()).then_some(Decimal(text))
    }

    /// The exact text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as the nearest `f64`, for statistics at the edge.
    pub fn to_f64(&self) -> f64 {
        // Validated plain decimal text always parses as f64.
        self.0.parse().unwrap_or(f64::NAN)
    }

    /// True when the value is exactly zero (a depth level of quantity zero means "remove").
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| matches!(b, b'0' | b'.' | b'-'))
    }

    /// Detaches from the input buffer.
    pub fn into_owned(self) -> Decimal<'static> {
        Decimal(Cow::Owned(self.0.into_owned()))
    }
}

fn is_plain_decimal(b: &[u8]) -> bool {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    all_digits(int) && frac.is_none_or(all_digits)
}

impl fmt::Debug for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({})", self.0)
    }
}

impl fmt::Display for Decimal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Option<Decimal<'_>> {
        Decimal::parse(Cow::Borrowed(s))
    }

    #[test]
    fn keeps_trailing_zeros_exactly() {
        assert_eq!(
            dec("108234.56000000").map(|d| d.to_string()).as_deref(),
            Some("108234.56000000")
        );
    }

    #[test]
    fn rejects_non_decimal_forms() {
        for bad in [
            "", "-", ".5", "5.", "1e5", "+1", "NaN", " 1", "1.2.3", "--1",
        ] {
            assert!(dec(bad).is_none(), "{bad:?} should be malformed");
        }
        for good in ["0", "-1.5", "0.00000000", "123"] {
            assert!(dec(good).is_some(), "{good:?} should parse");
        }
    }

    #[test]
    fn zero_quantity_is_detected() {
        assert!(dec("0.00000000").is_some_and(|d| d.is_zero()));
        assert!(dec("0.00000001").is_some_and(|d| !d.is_zero()));
    }

    #[test]
    fn converts_to_nearest_float() {
        assert_eq!(dec("-1.25").map(|d| d.to_f64()), Some(-1.25));
    }
}
