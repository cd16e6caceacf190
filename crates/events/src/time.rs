//! The producer's `timestamp` format: naive UTC with a literal `Z`, 0 or 6 fractional digits.

/// Parses `YYYY-MM-DDTHH:MM:SS[.ffffff…]Z` into epoch milliseconds (fraction truncated).
/// Pure arithmetic on UTC: no time zone database, no local time, so the result never depends
/// on the machine's settings.
pub(crate) fn parse_utc_iso8601_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = b.get(19..)?;
    let millis = match rest {
        [b'Z'] => 0,
        [b'.', frac @ .., b'Z'] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => frac
            .iter()
            .chain(b"000")
            .take(3)
            .fold(0, |acc, &c| acc * 10 + i64::from(c - b'0')),
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_producer_forms() {
        assert_eq!(
            parse_utc_iso8601_ms("2025-10-21T14:03:12.351207Z"),
            Some(1_761_055_392_351)
        );
        assert_eq!(
            parse_utc_iso8601_ms("2025-10-21T14:03:12Z"),
            Some(1_761_055_392_000)
        );
        assert_eq!(parse_utc_iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_iso8601_ms("2024-02-29T00:00:00.5Z"),
            Some(1_709_164_800_500)
        );
    }

    #[test]
    fn rejects_other_forms() {
        for bad in [
            "",
            "2025-10-21 14:03:12Z",
            "2025-10-21T14:03:12",
            "2025-13-01T00:00:00Z",
            "2025-10-21T14:03:12.Z",
            "2025-10-21T14:03:12+00:00",
        ] {
            assert_eq!(parse_utc_iso8601_ms(bad), None, "{bad}");
        }
    }
}
