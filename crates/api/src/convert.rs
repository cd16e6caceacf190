//! Stored documents into response types (pure). A document that lacks a required field or holds
//! a value we do not know is skipped and counted, never answered with a 500: the collections
//! are written by other processes and may hold older shapes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document};
use serde_json::{Map, Value};

use crate::model::{
    AnalyticsPoint, CorrelationMatrix, DatasetSummary, Finding, HealthPoint, Kind, Severity,
    Status, Timeframe,
};

/// Fields of an analytics document that are not the metric's values.
const NOT_VALUES: [&str; 7] = [
    "_id",
    "symbol",
    "timeframe",
    "timestamp",
    "metadata",
    "leader_term",
    "leader_identity",
];

fn date(d: &Document, key: &str) -> Option<DateTime<Utc>> {
    match d.get(key)? {
        Bson::DateTime(t) => DateTime::from_timestamp_millis(t.timestamp_millis()),
        _ => None,
    }
}

fn float(d: &Document, key: &str) -> Option<f64> {
    match d.get(key)? {
        Bson::Double(x) if x.is_finite() => Some(*x),
        Bson::Int32(x) => Some(f64::from(*x)),
        // Counts and scores stay far below 2^53, so the conversion is exact.
        Bson::Int64(x) => Some(*x as f64),
        _ => None,
    }
}

fn int(d: &Document, key: &str) -> Option<i64> {
    match d.get(key)? {
        Bson::Int32(x) => Some(i64::from(*x)),
        Bson::Int64(x) => Some(*x),
        Bson::Double(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(*x as i64),
        _ => None,
    }
}

fn text<'a>(d: &'a Document, key: &str) -> Option<&'a str> {
    d.get_str(key).ok()
}

/// The (symbol, timeframe) of a document.
pub fn dataset_key(d: &Document) -> Option<(String, Timeframe)> {
    Some((
        text(d, "symbol")?.to_owned(),
        Timeframe::parse(text(d, "timeframe")?)?,
    ))
}

/// A `health_metrics` document as a history point.
pub fn health_point(d: &Document) -> Option<HealthPoint> {
    Some(HealthPoint {
        audited_at: date(d, "computed_at")?,
        status: Status::parse(text(d, "status")?)?,
        quality_score: float(d, "quality_score"),
        completeness: float(d, "completeness"),
        consistency_score: float(d, "consistency_score"),
        freshness_seconds: int(d, "freshness_seconds"),
        missing_candles: int(d, "missing_candles"),
        gaps_count: int(d, "gaps_count"),
        invalid_rows: int(d, "invalid_rows"),
        leader_term: int(d, "leader_term"),
    })
}

/// The newest `health_metrics` document per dataset, from documents sorted newest first, as
/// summaries with their open findings counted from `open`. Returns the summaries sorted by
/// symbol then timeframe, and how many documents were skipped as malformed.
pub fn latest_per_dataset(
    newest_first: &[Document],
    open: &HashMap<(String, Timeframe), u64>,
) -> (Vec<DatasetSummary>, usize) {
    let mut seen: BTreeMap<(String, Timeframe), DatasetSummary> = BTreeMap::new();
    let mut skipped = 0;
    for d in newest_first {
        let (Some(key), Some(point)) = (dataset_key(d), health_point(d)) else {
            skipped += 1;
            continue;
        };
        if seen.contains_key(&key) {
            continue;
        }
        let summary = DatasetSummary {
            symbol: key.0.clone(),
            timeframe: key.1,
            status: point.status,
            quality_score: point.quality_score,
            completeness: point.completeness,
            freshness_seconds: point.freshness_seconds,
            open_findings: open.get(&key).copied().unwrap_or(0),
            audited_at: point.audited_at,
        };
        seen.insert(key, summary);
    }
    (seen.into_values().collect(), skipped)
}

/// An `audit_logs` document as a finding.
pub fn finding(d: &Document) -> Option<Finding> {
    let kind = text(d, "kind")?;
    let severity = text(d, "severity")?;
    let (symbol, timeframe) = dataset_key(d)?;
    Some(Finding {
        id: text(d, "_id")?.to_owned(),
        symbol,
        timeframe,
        kind: Kind::ALL.into_iter().find(|k| k.as_str() == kind)?,
        severity: [Severity::Info, Severity::Medium, Severity::High]
            .into_iter()
            .find(|s| s.as_str() == severity)?,
        details: text(d, "details").unwrap_or_default().to_owned(),
        start: date(d, "start"),
        end: date(d, "end"),
        open_time: date(d, "open_time"),
        timestamp: date(d, "timestamp")?,
        missing_candles: int(d, "missing_candles"),
        duration_seconds: int(d, "duration_seconds"),
        first_seen: date(d, "first_seen"),
        last_seen: date(d, "last_seen"),
        resolved_at: date(d, "resolved_at"),
        leader_term: int(d, "leader_term"),
    })
}

/// BSON as JSON: dates as RFC 3339, non-finite numbers as null.
pub fn to_json(b: &Bson) -> Value {
    match b {
        Bson::Double(x) => serde_json::Number::from_f64(*x).map_or(Value::Null, Value::Number),
        Bson::Int32(x) => Value::from(*x),
        Bson::Int64(x) => Value::from(*x),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Boolean(x) => Value::Bool(*x),
        Bson::DateTime(t) => DateTime::from_timestamp_millis(t.timestamp_millis())
            .map_or(Value::Null, |t: DateTime<Utc>| {
                Value::String(t.to_rfc3339())
            }),
        Bson::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Bson::Document(d) => {
            Value::Object(d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        _ => Value::Null,
    }
}

/// An analytics document as a point: every field but the identity, time and fencing ones.
pub fn analytics_point(d: &Document) -> Option<AnalyticsPoint> {
    let values: Map<String, Value> = d
        .iter()
        .filter(|(k, _)| !NOT_VALUES.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect();
    Some(AnalyticsPoint {
        timestamp: date(d, "timestamp")?,
        computed_at: d
            .get_document("metadata")
            .ok()
            .and_then(|m| date(m, "computed_at")),
        values,
    })
}

/// An `analytics_correlation_matrix` document.
pub fn matrix(d: &Document) -> Option<CorrelationMatrix> {
    let stored = d.get_document("matrix").ok()?;
    let mut matrix = BTreeMap::new();
    for (row, cols) in stored {
        let Bson::Document(cols) = cols else {
            return None;
        };
        let cols = cols.keys().map(|c| (c.clone(), float(cols, c))).collect();
        matrix.insert(row.clone(), cols);
    }
    Some(CorrelationMatrix {
        timeframe: Timeframe::parse(text(d, "timeframe")?)?,
        timestamp: date(d, "timestamp")?,
        computed_at: d
            .get_document("metadata")
            .ok()
            .and_then(|m| date(m, "computed_at")),
        symbols: matrix.keys().cloned().collect(),
        matrix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use store::bson_safe::date as bdate;
    use store::testing::at;

    fn health(symbol: &str, tf: &str, h: u32, status: &str) -> Document {
        doc! {
            "symbol": symbol, "timeframe": tf, "status": status,
            "computed_at": bdate(at(2025, 10, 21, h, 0, 0)),
            "quality_score": 92.5, "completeness": Bson::Null, "freshness_seconds": 1800_i64,
        }
    }

    #[test]
    fn the_newest_document_of_each_dataset_wins_and_open_findings_are_joined() {
        let docs = vec![
            health("ETHUSDT", "1h", 12, "ok"),
            health("BTCUSDT", "1h", 12, "critical"),
            health("BTCUSDT", "1h", 11, "ok"),
            health("BTCUSDT", "5m", 11, "warn"),
            doc! { "symbol": "BTCUSDT", "timeframe": "1h", "status": "bogus" },
        ];
        let open = HashMap::from([(("BTCUSDT".to_owned(), Timeframe::H1), 2)]);
        let (list, skipped) = latest_per_dataset(&docs, &open);
        let got: Vec<(&str, &str, Status, u64)> = list
            .iter()
            .map(|s| {
                (
                    s.symbol.as_str(),
                    s.timeframe.label(),
                    s.status,
                    s.open_findings,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("BTCUSDT", "5m", Status::Warn, 0),
                ("BTCUSDT", "1h", Status::Critical, 2),
                ("ETHUSDT", "1h", Status::Ok, 0),
            ]
        );
        assert_eq!(skipped, 1);
        assert_eq!(list[1].quality_score, Some(92.5));
        assert_eq!(list[1].completeness, None);
        assert_eq!(list[1].freshness_seconds, Some(1800));
    }

    #[test]
    fn findings_with_unknown_kinds_are_skipped() {
        let mut d = doc! {
            "_id": "BTCUSDT|1h|gap|x", "symbol": "BTCUSDT", "timeframe": "1h", "kind": "gap",
            "severity": "high", "timestamp": bdate(at(2025, 10, 21, 5, 0, 0)), "details": "Gap",
            "resolved_at": Bson::Null, "missing_candles": 3_i32,
        };
        let f = finding(&d).expect("valid");
        assert_eq!(
            (f.kind, f.severity, f.missing_candles),
            (Kind::Gap, Severity::High, Some(3))
        );
        assert_eq!(f.resolved_at, None);
        d.insert("kind", "meteor");
        assert!(finding(&d).is_none());
    }

    #[test]
    fn analytics_values_keep_maps_and_drop_identity_and_fencing_fields() {
        let d = doc! {
            "_id": "x", "symbol": "BTCUSDT", "timeframe": "1h",
            "timestamp": bdate(at(2025, 10, 21, 5, 0, 0)),
            "rolling_stddev": 0.5, "hourly_pattern": { "0": 1.5 }, "regime": "trending",
            "metadata": { "computed_at": bdate(at(2025, 10, 21, 6, 0, 0)) },
            "leader_term": 3_i64,
        };
        let p = analytics_point(&d).expect("valid");
        let keys: Vec<&str> = p.values.keys().map(String::as_str).collect();
        assert_eq!(keys, ["rolling_stddev", "hourly_pattern", "regime"]);
        assert_eq!(p.values["hourly_pattern"]["0"], 1.5);
        assert_eq!(p.computed_at, Some(at(2025, 10, 21, 6, 0, 0)));
    }

    #[test]
    fn matrix_rows_become_maps_with_null_for_undefined() {
        let d = doc! {
            "timeframe": "1h", "timestamp": bdate(at(2025, 10, 21, 5, 0, 0)),
            "matrix": { "BTCUSDT": { "BTCUSDT": 1.0, "ETHUSDT": Bson::Null } },
        };
        let m = matrix(&d).expect("valid");
        assert_eq!(m.symbols, ["BTCUSDT"]);
        assert_eq!(m.matrix["BTCUSDT"]["ETHUSDT"], None);
        assert_eq!(m.matrix["BTCUSDT"]["BTCUSDT"], Some(1.0));
    }

    #[test]
    fn timeframes_match_the_schedulers_labels() {
        for tf in Timeframe::ALL {
            let parsed: store::Timeframe = tf.label().parse().expect("store knows it");
            assert_eq!(parsed.label(), tf.label());
        }
    }
}
