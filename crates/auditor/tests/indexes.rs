//! The auditor's queries are index-backed and its health history is bounded, on the real
//! Mongo-compatible server: `explain` names our index for each read filter, and the TTL index
//! on `computed_at` exists with the configured lifetime (changed in place).

use std::time::Duration;

use mongodb::bson::{Bson, Document, doc};
use store::MongoSink;
use store::bson_safe::date;
use store::testing::{at, drop_mongo_database, mongo_url};

use auditor::dataset::{DatasetAudit, Params};
use auditor::documents::{AUDIT_LOGS, HEALTH_METRICS, HEALTH_TTL_INDEX, unresolved_filter};
use auditor::score::Profile;
use auditor::write::ensure_indexes;

async fn sink(url: &str) -> MongoSink {
    MongoSink::connect(url, "indexes-test", Duration::from_secs(30))
        .await
        .expect("connect")
}

/// The index the winning plan of `find(filter)` scans, if any.
async fn index_of(s: &MongoSink, coll: &str, filter: Document) -> Option<String> {
    let explain = doc! {
        "explain": { "find": coll, "filter": filter },
        "verbosity": "queryPlanner",
    };
    let db = s.collection(coll);
    let reply = db
        .client()
        .database(s.database_name())
        .run_command(explain)
        .await
        .expect("explain");
    let mut stage = reply
        .get_document("queryPlanner")
        .and_then(|q| q.get_document("winningPlan"))
        .ok()?
        .clone();
    loop {
        if stage.get_str("stage") == Ok("IXSCAN") {
            return stage.get_str("indexName").ok().map(str::to_owned);
        }
        stage = stage.get_document("inputStage").ok()?.clone();
    }
}

async fn ttl_of(s: &MongoSink) -> Option<i64> {
    let mut cursor = s
        .collection(HEALTH_METRICS)
        .list_indexes()
        .await
        .expect("list");
    while cursor.advance().await.expect("next") {
        let m = cursor.deserialize_current().expect("index");
        if m.options.as_ref().and_then(|o| o.name.as_deref()) == Some(HEALTH_TTL_INDEX) {
            return m
                .options
                .and_then(|o| o.expire_after)
                .map(|d| d.as_secs() as i64);
        }
    }
    None
}

#[tokio::test]
async fn the_schedulers_filters_use_our_indexes() {
    let url = mongo_url();
    let s = sink(&url).await;
    ensure_indexes(&s, 30).await.expect("indexes");
    // Enough documents, most of them resolved (as in a deployment's history), that a scan
    // costs more than an index lookup.
    let docs: Vec<Document> = (0..2_000)
        .map(|i| {
            doc! {
                "_id": format!("S{}|1h|gap|{i}", i % 400), "symbol": format!("S{}", i % 400),
                "timeframe": "1h", "kind": if i % 2 == 0 { "gap" } else { "duplicate" },
                "resolved_at": if i % 20 == 0 { Bson::Null } else { date(at(2025, 10, 21, 0, 0, 0)) },
                "last_seen": date(at(2025, 10, 21, 0, 0, 0)),
                "open_time": date(at(2025, 10, 20, 0, 0, 0)), "leader_term": 1_i64,
            }
        })
        .collect();
    s.collection(AUDIT_LOGS)
        .insert_many(docs)
        .await
        .expect("insert");
    // The read of the stored unresolved row findings: the whole filter.
    let since = at(2025, 10, 19, 0, 0, 0);
    let stored = auditor::write::stored_row_keys_filter(since);
    assert_eq!(
        index_of(&s, AUDIT_LOGS, stored).await.as_deref(),
        Some("sched_unresolved_open_time")
    );
    // A dataset's resolution: its leading predicates (the test server plans an index only
    // when the index holds every field a filter names; real MongoDB applies the rest of the
    // filter to what the index returns).
    let p = Params {
        now: at(2025, 10, 22, 0, 30, 0),
        window: 86_400,
        timeframe: "1h".parse().expect("tf"),
        tolerance: 60,
        max_lag: 7_200,
        profile: Profile::V3,
        max_row_findings: 100,
    };
    let report = DatasetAudit::new("S7", p, None).finish();
    let full = unresolved_filter(&report).expect("audited");
    let leading: Document = ["symbol", "timeframe", "resolved_at", "last_seen"]
        .iter()
        .map(|k| ((*k).to_owned(), full.get(*k).expect("field").clone()))
        .collect();
    assert_eq!(
        index_of(&s, AUDIT_LOGS, leading).await.as_deref(),
        Some("sched_dataset_unresolved")
    );
    // Keyed writes: `_id`.
    assert_eq!(
        index_of(&s, AUDIT_LOGS, doc! { "_id": "S7|1h|gap|7" })
            .await
            .as_deref(),
        Some("_id_")
    );
    // The retention, with its lifetime changed in place.
    assert_eq!(ttl_of(&s).await, Some(30 * 86_400));
    ensure_indexes(&s, 7).await.expect("indexes again");
    assert_eq!(ttl_of(&s).await, Some(7 * 86_400));
    drop_mongo_database(&url).await;
}
