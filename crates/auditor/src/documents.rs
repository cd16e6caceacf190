//! The MongoDB documents of a cycle (plus the leader term the sink adds): one `health_metrics`
//! document per dataset per cycle and one upserted `audit_logs` document per finding. Pure: reports
//! in, BSON out.

use chrono::{DateTime, Utc};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use store::bson_safe::{count, date, double, opt_date};

use crate::dataset::DatasetReport;
use crate::finding::{Check, Finding, rfc3339};

/// Findings, upserted by their stable key.
pub const AUDIT_LOGS: &str = "audit_logs";
/// Health, one document per dataset per cycle.
pub const HEALTH_METRICS: &str = "health_metrics";

/// The name of the health history's TTL index.
pub const HEALTH_TTL_INDEX: &str = "sched_health_ttl";

/// The indexes created at startup, per collection. The `sched_` ones back the auditor's own
/// queries: the stored unresolved row findings (`stored_row_keys`), a dataset's unresolved
/// findings (resolution). The health history's TTL index is [`HEALTH_TTL_INDEX`].
pub fn indexes() -> Vec<(&'static str, Vec<IndexModel>)> {
    let named = |keys: Document, name: &str| {
        IndexModel::builder()
            .keys(keys)
            .options(IndexOptions::builder().name(name.to_owned()).build())
            .build()
    };
    vec![
        (
            AUDIT_LOGS,
            vec![
                named(doc! { "symbol": 1, "timestamp": -1 }, "symbol_timestamp"),
                named(
                    doc! { "symbol": 1, "timeframe": 1, "kind": 1 },
                    "symbol_timeframe_kind",
                ),
                named(
                    doc! { "resolved_at": 1, "open_time": 1 },
                    "sched_unresolved_open_time",
                ),
                named(
                    doc! { "symbol": 1, "timeframe": 1, "resolved_at": 1, "last_seen": 1 },
                    "sched_dataset_unresolved",
                ),
            ],
        ),
        (
            HEALTH_METRICS,
            vec![named(
                doc! { "symbol": 1, "timeframe": 1, "computed_at": -1 },
                "symbol_timeframe_computed_at",
            )],
        ),
    ]
}

/// The lifetime of a health document: `days` after the cycle it describes (`computed_at`).
pub fn health_ttl(days: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(days) * 86_400)
}

/// The `_id` of a dataset's health document for a cycle at `computed_at`: re-writing the same
/// cycle (a retry) replaces it instead of adding one.
pub fn health_id(r: &DatasetReport) -> String {
    format!("{}|{}|{}", r.symbol, r.timeframe, rfc3339(r.params.now))
}

/// The health document's fields (`$set`).
pub fn health_doc(r: &DatasetReport, run_id: &str) -> Document {
    let c = &r.counts;
    let s = r.scores;
    doc! {
        "symbol": &r.symbol,
        "timeframe": r.timeframe.label(),
        "table": r.timeframe.table(),
        "dataset_id": r.dataset_id(),
        "run_id": run_id,
        "computed_at": date(r.params.now),
        "window_start": date(r.params.start()),
        "window_end": date(r.params.now),
        "max_lag_seconds": r.params.max_lag,
        "due_slots": c.due_slots,
        "filled_slots": c.filled_slots,
        "rows_in_window": c.rows_in_window,
        "missing_candles": c.missing_candles,
        "gaps_count": c.gaps_count,
        "duplicate_timestamps": c.duplicate_timestamps,
        "duplicate_rows": c.duplicate_rows,
        "invalid_rows": c.invalid_rows,
        "row_findings_suppressed": count(r.row_findings_suppressed),
        "freshness_seconds": r.freshness_seconds.map_or(Bson::Null, Bson::Int64),
        "close_time_convention": r.convention.as_str(),
        "completeness": s.and_then(|s| s.completeness).map_or(Bson::Null, double),
        "consistency_score": s.map_or(Bson::Null, |s| double(s.consistency)),
        "freshness_score": s.map_or(Bson::Null, |s| double(s.freshness)),
        "quality_score": s.map_or(Bson::Null, |s| double(s.quality)),
        "score_profile": r.params.profile.as_str(),
        "status": r.status.as_str(),
    }
}

/// A finding's document: (`$set` fields, `$setOnInsert` fields).
pub fn finding_doc(r: &DatasetReport, f: &Finding, run_id: &str) -> (Document, Document) {
    let now = r.params.now;
    let row_level = f.check.is_row_level();
    let set = doc! {
        "symbol": &r.symbol,
        "timeframe": r.timeframe.label(),
        "dataset_id": r.dataset_id(),
        "kind": f.check.as_str(),
        "audit_type": f.check.as_str(),
        "severity": f.severity.as_str(),
        "start": if row_level { Bson::Null } else { opt_date(f.start) },
        "end": opt_date(f.end),
        "open_time": if row_level { opt_date(f.start) } else { Bson::Null },
        "timestamp": date(f.start.unwrap_or(now)),
        "missing_candles": f.missing_candles.map_or(Bson::Null, Bson::Int64),
        "duration_seconds": f.duration_seconds.map_or(Bson::Null, Bson::Int64),
        "details": &f.details,
        "last_seen": date(now),
        "resolved_at": Bson::Null,
        "run_id": run_id,
    };
    (set, doc! { "first_seen": date(now) })
}

/// The filter of the findings of `r`'s dataset that this audit covered but did not see again
/// (they get `resolved_at`): dataset-level kinds, gaps ending inside the window, and row findings
/// inside the window (unless the row cap may have hidden a stored one this cycle: it never does
/// when the stored keys were known). `None` for informational
/// reports, which audited nothing.
pub fn unresolved_filter(r: &DatasetReport) -> Option<Document> {
    r.scores?;
    let now: DateTime<Utc> = r.params.now;
    let start = date(r.params.start());
    let dataset_kinds: Vec<&str> = Check::ALL
        .iter()
        .filter(|c| !c.is_row_level() && **c != Check::Gap)
        .map(|c| c.as_str())
        .collect();
    let mut covered = vec![
        doc! { "kind": { "$in": dataset_kinds } },
        doc! { "kind": "gap", "end": { "$gt": start.clone() } },
    ];
    if r.row_findings_suppressed == 0 || r.stored_keys_known {
        let row_kinds: Vec<&str> = Check::ALL
            .iter()
            .filter(|c| c.is_row_level())
            .map(|c| c.as_str())
            .collect();
        covered.push(doc! { "kind": { "$in": row_kinds }, "open_time": { "$gte": start } });
    }
    Some(doc! {
        "symbol": &r.symbol,
        "timeframe": r.timeframe.label(),
        "resolved_at": Bson::Null,
        "last_seen": { "$lt": date(now) },
        "$or": covered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DatasetAudit, Params};
    use crate::score::Profile;
    use store::testing::{at, candle};

    fn report() -> DatasetReport {
        let tf = "1h".parse().expect("tf");
        let p = Params {
            now: at(2025, 10, 21, 14, 30, 0),
            window: 86_400,
            timeframe: tf,
            tolerance: 60,
            max_lag: 7_200,
            profile: Profile::V3,
            max_row_findings: 100,
        };
        let mut a = DatasetAudit::new("BTCUSDT", p, None);
        for h in 0..14 {
            if h != 5 {
                a.push(candle("BTCUSDT", tf, at(2025, 10, 21, h, 0, 0)));
            }
        }
        let mut bad = candle("BTCUSDT", tf, at(2025, 10, 21, 13, 0, 0));
        bad.id = "x".into();
        bad.open_time = at(2025, 10, 21, 13, 0, 0);
        a.finish_with(bad)
    }

    impl DatasetAudit {
        fn finish_with(mut self, k: store::Kline) -> DatasetReport {
            self.push(k);
            self.finish()
        }
    }

    #[test]
    fn health_document_has_every_field_as_a_bson_safe_type() {
        let r = report();
        let d = health_doc(&r, "run-1");
        for field in [
            "symbol",
            "timeframe",
            "table",
            "dataset_id",
            "run_id",
            "computed_at",
            "window_start",
            "window_end",
            "max_lag_seconds",
            "due_slots",
            "filled_slots",
            "rows_in_window",
            "missing_candles",
            "gaps_count",
            "duplicate_timestamps",
            "duplicate_rows",
            "invalid_rows",
            "freshness_seconds",
            "close_time_convention",
            "completeness",
            "consistency_score",
            "freshness_score",
            "quality_score",
            "score_profile",
            "status",
        ] {
            assert!(d.contains_key(field), "{field}");
        }
        assert_eq!(d.get_str("dataset_id").ok(), Some("candles_BTCUSDT_1h"));
        assert_eq!(d.get_str("table").ok(), Some("klines_h1"));
        assert_eq!(d.get_i64("gaps_count").ok(), Some(1));
        assert!(matches!(d.get("computed_at"), Some(Bson::DateTime(_))));
        assert_eq!(health_id(&r), "BTCUSDT|1h|2025-10-21T14:30:00Z");
    }

    #[test]
    fn gap_and_row_findings_fill_their_own_time_fields() {
        let r = report();
        let gap = r
            .findings
            .iter()
            .find(|f| f.check == Check::Gap)
            .expect("gap");
        let (set, on_insert) = finding_doc(&r, gap, "run-1");
        assert!(matches!(set.get("start"), Some(Bson::DateTime(_))));
        assert_eq!(set.get("open_time"), Some(&Bson::Null));
        assert_eq!(set.get_i64("missing_candles").ok(), Some(1));
        assert!(on_insert.contains_key("first_seen"));
        let row = r
            .findings
            .iter()
            .find(|f| f.check == Check::Duplicate)
            .expect("duplicate");
        let (set, _) = finding_doc(&r, row, "run-1");
        assert!(matches!(set.get("open_time"), Some(Bson::DateTime(_))));
        assert_eq!(set.get("start"), Some(&Bson::Null));
    }

    #[test]
    fn informational_reports_resolve_nothing() {
        let r = report();
        assert!(unresolved_filter(&r).is_some());
        let info =
            DatasetReport::informational("X", r.params, crate::dataset::Status::TableMissing);
        assert!(unresolved_filter(&info).is_none());
    }
}
