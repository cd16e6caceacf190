//! What the schedulers wrote to MongoDB: the auditor's `health_metrics` and `audit_logs`
//! (docs/audit-rules.md), and the `analytics_*` collections, one per metric
//! (docs/analytics.md).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use serde::Serialize;

/// The newest health document of one dataset, with its open findings.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetReport {
    /// Symbol.
    pub symbol: String,
    /// Timeframe label.
    pub timeframe: String,
    /// `ok`, `warn`, `critical`, `no_data`, …
    pub status: String,
    /// The v3 quality score (null when not computed).
    pub quality_score: Option<f64>,
    /// Findings not resolved.
    pub findings: Vec<FindingReport>,
}

/// One `audit_logs` finding.
#[derive(Debug, Clone, Serialize)]
pub struct FindingReport {
    /// The check (`gap`, `stale`, `ohlc_violation`, …).
    pub check: String,
    /// `high`, `medium` or `info`.
    pub severity: String,
    /// The gap start or the row's open time (RFC 3339), when the finding has one.
    pub start: Option<String>,
    /// The auditor's text.
    pub details: String,
}

/// One value an analytics document holds.
#[derive(Debug, Clone, Serialize)]
pub struct AnalyticsValue {
    /// The collection without its `analytics_` prefix (`volatility`).
    pub metric: String,
    /// The timeframe of the document.
    pub timeframe: String,
    /// The field (`annualized_volatility`).
    pub field: String,
    /// Its value: a number, or a label (`regime`).
    pub value: serde_json::Value,
}

fn string(d: &Document, key: &str) -> String {
    d.get_str(key).unwrap_or_default().to_owned()
}

fn rfc3339(v: Option<&Bson>) -> Option<String> {
    match v {
        Some(Bson::DateTime(t)) => t.try_to_rfc3339_string().ok(),
        _ => None,
    }
}

fn number(v: &Bson) -> Option<f64> {
    match v {
        Bson::Double(x) => Some(*x),
        Bson::Int32(x) => Some(f64::from(*x)),
        Bson::Int64(x) => Some(*x as f64),
        _ => None,
    }
}

/// Datasets with at least one `health_metrics` document.
///
/// # Errors
/// MongoDB refused the query.
pub async fn audited_datasets(db: &Database) -> mongodb::error::Result<usize> {
    let keys = db
        .collection::<Document>("health_metrics")
        .distinct("dataset_id", doc! {})
        .await?;
    Ok(keys.len())
}

/// The newest health document per dataset with its unresolved findings, ordered by symbol and
/// timeframe as given.
///
/// # Errors
/// MongoDB refused a query.
pub async fn audit(
    db: &Database,
    symbols: &[String],
    timeframes: &[&str],
) -> mongodb::error::Result<Vec<DatasetReport>> {
    let health = db.collection::<Document>("health_metrics");
    let logs = db.collection::<Document>("audit_logs");
    let mut out = Vec::new();
    for symbol in symbols {
        for tf in timeframes {
            let filter = doc! {"symbol": symbol, "timeframe": *tf};
            let newest = health
                .find_one(filter.clone())
                .sort(doc! {"computed_at": -1})
                .await?;
            let Some(h) = newest else { continue };
            let mut findings = Vec::new();
            let mut cursor = logs
                .find(doc! {"symbol": symbol, "timeframe": *tf, "resolved_at": Bson::Null})
                .sort(doc! {"kind": 1, "start": 1})
                .await?;
            while let Some(f) = cursor.try_next().await? {
                findings.push(FindingReport {
                    check: string(&f, "kind"),
                    severity: string(&f, "severity"),
                    start: rfc3339(f.get("start")).or_else(|| rfc3339(f.get("open_time"))),
                    details: string(&f, "details"),
                });
            }
            out.push(DatasetReport {
                symbol: symbol.clone(),
                timeframe: (*tf).to_owned(),
                status: string(&h, "status"),
                quality_score: h.get("quality_score").and_then(number),
                findings,
            });
        }
    }
    Ok(out)
}

/// The `analytics_*` collections and how many documents each holds per symbol. Documents with
/// no `symbol` (the correlation matrix, one per timeframe and hour) are counted under `*`.
///
/// # Errors
/// MongoDB refused a query.
pub async fn analytics_counts(
    db: &Database,
) -> mongodb::error::Result<BTreeMap<String, BTreeMap<String, u64>>> {
    let mut out = BTreeMap::new();
    for name in db.list_collection_names().await? {
        let Some(metric) = name.strip_prefix("analytics_") else {
            continue;
        };
        let coll = db.collection::<Document>(&name);
        let mut per_symbol = BTreeMap::new();
        for s in coll.distinct("symbol", doc! {}).await? {
            if let Bson::String(s) = s {
                let n = coll.count_documents(doc! {"symbol": &s}).await?;
                per_symbol.insert(s, n);
            }
        }
        let unkeyed = coll
            .count_documents(doc! {"symbol": {"$exists": false}})
            .await?;
        if unkeyed > 0 {
            per_symbol.insert("*".to_owned(), unkeyed);
        }
        out.insert(metric.to_owned(), per_symbol);
    }
    Ok(out)
}

/// The values the summary shows per symbol: one telling field per analytics collection.
pub const SHOWN: [(&str, &str); 5] = [
    ("volatility", "annualized_volatility"),
    ("trend", "rate_of_change"),
    ("volume", "volume_spike_ratio"),
    ("deviation", "z_score"),
    ("regime", "regime"),
];

/// The [`SHOWN`] fields of the newest `1h` document (else any timeframe) of each collection
/// for `symbol`; fields or documents that do not exist are left out.
///
/// # Errors
/// MongoDB refused a query.
pub async fn analytics_values(
    db: &Database,
    symbol: &str,
) -> mongodb::error::Result<Vec<AnalyticsValue>> {
    let mut out = Vec::new();
    for (metric, field) in SHOWN {
        let coll = db.collection::<Document>(&format!("analytics_{metric}"));
        let mut newest = None;
        for filter in [
            doc! {"symbol": symbol, "timeframe": "1h"},
            doc! {"symbol": symbol},
        ] {
            newest = coll.find_one(filter).sort(doc! {"timestamp": -1}).await?;
            if newest.is_some() {
                break;
            }
        }
        let Some(d) = newest else { continue };
        let value = match d.get(field) {
            Some(Bson::String(s)) => serde_json::Value::from(s.as_str()),
            Some(v) => match number(v) {
                Some(x) => serde_json::Value::from(x),
                None => continue,
            },
            None => continue,
        };
        out.push(AnalyticsValue {
            metric: metric.to_owned(),
            timeframe: string(&d, "timeframe"),
            field: field.to_owned(),
            value,
        });
    }
    Ok(out)
}
