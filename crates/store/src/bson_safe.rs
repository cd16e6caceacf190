//! Numbers as BSON can hold them: doubles and int64 only, never a decimal, never NaN or ±∞
//! (those become null), at every depth of a document: every reader of our documents gets plain
//! numbers, although MySQL hands us exact decimals.

use mongodb::bson::{Bson, Document};
use rust_decimal::Decimal;

/// A UTC instant as a BSON date (millisecond precision).
pub fn date(t: chrono::DateTime<chrono::Utc>) -> Bson {
    Bson::DateTime(mongodb::bson::DateTime::from_millis(t.timestamp_millis()))
}

/// An optional instant; `None` is null.
pub fn opt_date(t: Option<chrono::DateTime<chrono::Utc>>) -> Bson {
    t.map_or(Bson::Null, date)
}

/// A double, or null when it is NaN or infinite.
pub fn double(x: f64) -> Bson {
    if x.is_finite() {
        Bson::Double(x)
    } else {
        Bson::Null
    }
}

/// An optional double; `None`, NaN and ±∞ are null.
pub fn opt_double(x: Option<f64>) -> Bson {
    x.map_or(Bson::Null, double)
}

/// A decimal as a double (exact decimals are for computing, not for storing).
pub fn decimal(d: Decimal) -> Bson {
    double(crate::kline::to_f64(d))
}

/// An unsigned count as int64 (saturating; counts never get near the limit).
pub fn count(n: u64) -> Bson {
    Bson::Int64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Rewrites every value of `doc`, nested documents and arrays included: non-finite doubles
/// become null, Decimal128 becomes a double, Int32 stays (it is a valid integer).
pub fn sanitize(doc: Document) -> Document {
    doc.into_iter().map(|(k, v)| (k, value(v))).collect()
}

fn value(v: Bson) -> Bson {
    match v {
        Bson::Double(x) => double(x),
        Bson::Decimal128(d) => d.to_string().parse::<f64>().map_or(Bson::Null, double),
        Bson::Document(d) => Bson::Document(sanitize(d)),
        Bson::Array(items) => Bson::Array(items.into_iter().map(value).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn non_finite_numbers_become_null_at_every_depth() {
        let d = doc! {
            "a": f64::NAN,
            "b": { "c": f64::INFINITY, "d": [1.5, f64::NEG_INFINITY, { "e": f64::NAN }] },
            "f": 2_i64,
        };
        let clean = sanitize(d);
        assert_eq!(
            clean,
            doc! { "a": Bson::Null, "b": { "c": Bson::Null, "d": [1.5, Bson::Null, { "e": Bson::Null }] }, "f": 2_i64 }
        );
    }

    #[test]
    fn decimals_become_doubles() {
        let d: Decimal = "12345678901.12345678".parse().expect("decimal");
        assert_eq!(decimal(d), Bson::Double(12_345_678_901.123_457));
        let dec128: mongodb::bson::Decimal128 = "1.25".parse().expect("decimal128");
        assert_eq!(
            sanitize(doc! { "x": [Bson::Decimal128(dec128)] }),
            doc! { "x": [1.25] }
        );
    }
}
