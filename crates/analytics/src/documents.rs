//! The MongoDB documents of a cycle (pure): one collection per metric, `timestamp` the newest input
//! candle's open time, `metadata.computed_at`, doubles and string keys only.

use chrono::{DateTime, Utc};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use serde_json::Value;
use store::Timeframe;
use store::bson_safe::{date, double};

use crate::correlation::Correlation;
use crate::metric::{Kind, MATRIX_COLLECTION, MetricDoc};

/// A JSON value as BSON: integers as int64, other numbers as doubles (non-finite → null).
pub fn to_bson(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) if !n.is_f64() => Bson::Int64(i),
            (_, Some(f)) => double(f),
            _ => Bson::Null,
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => Bson::Array(a.iter().map(to_bson).collect()),
        Value::Object(o) => {
            Bson::Document(o.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect())
        }
    }
}

/// The `_id` of a metric document: unique per (symbol, timeframe, timestamp), so a re-run in
/// the same hour upserts instead of adding a copy.
pub fn metric_id(symbol: &str, tf: Timeframe, timestamp: DateTime<Utc>) -> String {
    format!("{symbol}|{}|{}", tf.label(), timestamp.timestamp_millis())
}

/// The `$set` of a metric document (the sink adds `leader_term` and `leader_identity`).
pub fn metric_document(
    symbol: &str,
    tf: Timeframe,
    d: &MetricDoc,
    computed_at: DateTime<Utc>,
) -> Document {
    let mut out = doc! {
        "symbol": symbol,
        "timeframe": tf.label(),
        "timestamp": date(d.timestamp),
    };
    for (k, v) in &d.fields {
        out.insert(k.clone(), to_bson(v));
    }
    let meta: Document = d
        .metadata_json(Value::Null)
        .iter()
        .map(|(k, v)| {
            let b = if k == "computed_at" {
                date(computed_at)
            } else {
                to_bson(v)
            };
            (k.clone(), b)
        })
        .collect();
    out.insert("metadata", meta);
    out
}

/// The `_id` of a matrix document.
pub fn matrix_id(tf: Timeframe, timestamp: DateTime<Utc>) -> String {
    format!("{}|{}", tf.label(), timestamp.timestamp_millis())
}

/// The matrix document `{timestamp, timeframe, matrix: {S: {S2: ρ}}}` (doubles).
pub fn matrix_document(c: &Correlation, tf: Timeframe, computed_at: DateTime<Utc>) -> Document {
    doc! {
        "timestamp": date(c.timestamp),
        "timeframe": tf.label(),
        "matrix": matrix_bson(c),
        "metadata": { "computed_at": date(computed_at) },
    }
}

/// The matrix `{S: {S2: ρ}}` as BSON, built directly: the same value as
/// `to_bson(&c.matrix_json())` without the JSON detour (symbols² entries, about 5 MB at 500
/// symbols).
fn matrix_bson(c: &Correlation) -> Bson {
    let rows = c.symbols.iter().zip(&c.matrix).map(|(s, row)| {
        let cells = c
            .symbols
            .iter()
            .zip(row)
            .map(|(s2, r)| (s2.clone(), double(*r)));
        (s.clone(), Bson::Document(cells.collect()))
    });
    Bson::Document(rows.collect())
}

/// Every collection with its index `{symbol: 1, timeframe: 1, timestamp: -1}`.
pub fn indexes() -> Vec<(&'static str, Vec<IndexModel>)> {
    Kind::ALL
        .iter()
        .map(|k| k.collection())
        .chain([MATRIX_COLLECTION])
        .map(|c| {
            let model = IndexModel::builder()
                .keys(doc! { "symbol": 1, "timeframe": 1, "timestamp": -1 })
                .build();
            (c, vec![model])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;

    #[test]
    fn the_matrix_is_the_same_bson_as_through_json_nulls_and_order_included() {
        let a: Vec<f64> = (0..40).map(|i| f64::from(i) * 1.5 + 2.0).collect();
        let b: Vec<f64> = (0..40).map(|i| f64::from(i % 7)).collect();
        let series = [
            ("ZECUSDT".to_owned(), crate::testdata::hourly(&a)),
            ("BTCUSDT".to_owned(), crate::testdata::hourly(&b)),
            ("FLATUSDT".to_owned(), crate::testdata::hourly(&[7.0; 40])),
        ];
        let c = crate::correlation::compute(&series, &Options::default()).expect("3 symbols");
        assert_eq!(matrix_bson(&c), to_bson(&c.matrix_json()));
        let Bson::Document(m) = matrix_bson(&c) else {
            panic!("a document")
        };
        let keys: Vec<&String> = m.keys().collect();
        assert_eq!(keys, ["ZECUSDT", "BTCUSDT", "FLATUSDT"]);
        assert_eq!(
            m.get_document("FLATUSDT").expect("row").get("BTCUSDT"),
            Some(&Bson::Null)
        );
    }

    #[test]
    fn seasonality_document_has_string_keys_doubles_and_dates() {
        let closes: Vec<f64> = (0..120).map(|i| f64::from(i % 24) + 0.5).collect();
        let c = crate::testdata::hourly(&closes);
        let s = crate::seasonality::compute(&c, crate::testdata::at(3), &Options::default())
            .expect("120 rows");
        let d = s.doc(&c, &Options::default()).expect("doc");
        let tf: Timeframe = "1h".parse().expect("1h");
        let now = crate::testdata::at(200);
        let b = metric_document("BTCUSDT", tf, &d, now);
        assert_eq!(b.get_str("symbol"), Ok("BTCUSDT"));
        assert_eq!(b.get_str("timeframe"), Ok("1h"));
        assert!(matches!(b.get("timestamp"), Some(Bson::DateTime(_))));
        let hourly = b.get_document("hourly_pattern").expect("map");
        assert_eq!(hourly.len(), 24);
        assert_eq!(hourly.get("23"), Some(&Bson::Double(23.5)));
        assert_eq!(b.get("dominant_cycle"), Some(&Bson::Int64(24)));
        let meta = b.get_document("metadata").expect("metadata");
        assert_eq!(meta.get("completeness"), Some(&Bson::Double(100.0)));
        assert_eq!(meta.get("computed_at"), Some(&date(now)));
        assert_eq!(
            meta.get_document("parameters").expect("p").get("fft_size"),
            Some(&Bson::Int64(120))
        );
        // Re-encodes as BSON bytes: every key and value is storable.
        let mut bytes = Vec::new();
        b.to_writer(&mut bytes).expect("valid BSON");
    }

    #[test]
    fn ids_are_per_symbol_timeframe_and_hour() {
        let tf: Timeframe = "1h".parse().expect("1h");
        let t = crate::testdata::at(1);
        assert_eq!(
            metric_id("BTCUSDT", tf, t),
            format!("BTCUSDT|1h|{}", t.timestamp_millis())
        );
        assert_ne!(
            metric_id("BTCUSDT", tf, t),
            metric_id("BTCUSDT", "1d".parse().expect("1d"), t)
        );
    }

    #[test]
    fn whole_numbers_stay_doubles_when_computed_as_doubles() {
        assert_eq!(to_bson(&Value::from(64860.0)), Bson::Double(64860.0));
        assert_eq!(to_bson(&Value::from(20)), Bson::Int64(20));
    }
}
