//! The Mongo sink against a real Mongo-compatible server: fencing, idempotency, BSON safety.

use std::time::Duration;

use mongodb::bson::{Bson, doc};
use store::sink::Deadline;
use store::testing::{at, drop_mongo_database, mongo_url};
use store::{Fence, MongoSink, SinkError};

fn fence(term: i64) -> Fence {
    Fence::new("data-manager-auditor", term, format!("pod-{term}"))
}

async fn sink(url: &str) -> MongoSink {
    MongoSink::connect(url, "store-test", Duration::from_secs(10))
        .await
        .expect("connect")
}

#[tokio::test]
async fn write_from_an_older_term_is_rejected_after_a_newer_term_wrote() {
    let url = mongo_url();
    let s = sink(&url).await;
    s.upsert_fenced("audit_logs", "k1", &fence(1), doc! { "v": 1 }, doc! {})
        .await
        .expect("term 1 writes");
    s.upsert_fenced("audit_logs", "k1", &fence(2), doc! { "v": 2 }, doc! {})
        .await
        .expect("term 2 overwrites");
    let err = s
        .upsert_fenced("audit_logs", "k1", &fence(1), doc! { "v": 99 }, doc! {})
        .await
        .expect_err("term 1 is fenced");
    assert!(err.is_fenced(), "{err}");
    // A key term 2 never wrote is still writable by term 1 (fencing is per key here; the fence
    // document below stops the whole cycle).
    s.upsert_fenced("audit_logs", "k2", &fence(1), doc! { "v": 1 }, doc! {})
        .await
        .expect("unrelated key");

    let coll = s.collection("audit_logs");
    let d = coll
        .find_one(doc! { "_id": "k1" })
        .await
        .expect("find")
        .expect("doc");
    assert_eq!(d.get_i32("v").ok(), Some(2));
    assert_eq!(d.get_i64("leader_term").ok(), Some(2));
    assert_eq!(d.get_str("leader_identity").ok(), Some("pod-2"));
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 2);
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn fence_document_admits_equal_or_newer_terms_only() {
    let url = mongo_url();
    let s = sink(&url).await;
    let now = at(2025, 10, 21, 0, 0, 0);
    s.claim_fence(&fence(3), now).await.expect("first claim");
    s.claim_fence(&fence(3), now)
        .await
        .expect("same term again");
    let err = s.claim_fence(&fence(2), now).await.expect_err("older term");
    assert!(err.is_fenced(), "{err}");
    s.claim_fence(&fence(4), now).await.expect("newer term");
    let d = s
        .collection("leader_fence")
        .find_one(doc! { "_id": "data-manager-auditor" })
        .await
        .expect("find")
        .expect("fence doc");
    assert_eq!(d.get_i64("term").ok(), Some(4));
    assert_eq!(d.get_str("holder").ok(), Some("pod-4"));
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn upserts_are_idempotent_keep_first_seen_and_store_no_nan() {
    let url = mongo_url();
    let s = sink(&url).await;
    for (i, v) in [f64::NAN, 1.5].into_iter().enumerate() {
        s.upsert_fenced(
            "health_metrics",
            "h1",
            &fence(1),
            doc! { "score": v, "nested": { "x": [f64::INFINITY, 2.0] }, "round": i as i64 },
            doc! { "first_seen": i as i64 },
        )
        .await
        .expect("upsert");
    }
    let coll = s.collection("health_metrics");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    let d = coll.find_one(doc! {}).await.expect("find").expect("doc");
    assert_eq!(d.get_f64("score").ok(), Some(1.5));
    assert_eq!(d.get_i64("first_seen").ok(), Some(0), "set on insert only");
    assert_eq!(
        d.get_document("nested")
            .expect("nested")
            .get_array("x")
            .expect("x"),
        &vec![Bson::Null, Bson::Double(2.0)]
    );
    assert_eq!(s.database_name(), store::mongo_url::database_name(&url));
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn update_many_touches_only_documents_of_older_or_equal_terms() {
    let url = mongo_url();
    let s = sink(&url).await;
    s.upsert_fenced("c", "a", &fence(1), doc! { "k": "x" }, doc! {})
        .await
        .expect("a");
    s.upsert_fenced("c", "b", &fence(5), doc! { "k": "x" }, doc! {})
        .await
        .expect("b");
    let n = s
        .update_many_fenced("c", doc! { "k": "x" }, &fence(2), doc! { "resolved": true })
        .await
        .expect("update");
    assert_eq!(n, 1);
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn no_write_is_sent_after_the_deadline_and_each_carries_the_server_write_time() {
    let url = mongo_url();
    let s = sink(&url).await;
    let live = Fence {
        deadline: Deadline::at(tokio::time::Instant::now() + Duration::from_secs(30)),
        ..fence(1)
    };
    s.upsert_fenced("c", "a", &live, doc! { "v": 1 }, doc! {})
        .await
        .expect("inside the deadline");
    let expired = Fence {
        deadline: Deadline::at(tokio::time::Instant::now()),
        ..fence(1)
    };
    let err = s
        .upsert_fenced("c", "b", &expired, doc! { "v": 1 }, doc! {})
        .await
        .expect_err("past the deadline");
    assert!(matches!(err, SinkError::DeadlinePassed { .. }), "{err}");
    assert!(err.ends_term() && !err.is_fenced());
    let not_leading = Fence {
        deadline: Deadline::from_fn(|| None),
        ..fence(1)
    };
    let err = s
        .claim_fence(&not_leading, at(2025, 1, 1, 0, 0, 0))
        .await
        .expect_err("not leading");
    assert!(matches!(err, SinkError::DeadlinePassed { .. }), "{err}");
    let coll = s.collection("c");
    assert_eq!(coll.count_documents(doc! {}).await.expect("count"), 1);
    let d = coll.find_one(doc! {}).await.expect("find").expect("doc");
    assert!(
        matches!(d.get("written_at"), Some(Bson::DateTime(_))),
        "{d}"
    );
    assert_eq!(
        s.collection("leader_fence")
            .count_documents(doc! {})
            .await
            .expect("count"),
        0
    );
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn resolving_takes_the_resolvers_term_so_an_older_term_cannot_undo_it() {
    let url = mongo_url();
    let s = sink(&url).await;
    s.upsert_fenced(
        "c",
        "a",
        &fence(1),
        doc! { "k": "x", "resolved": false },
        doc! {},
    )
    .await
    .expect("a");
    let n = s
        .update_many_fenced("c", doc! { "k": "x" }, &fence(2), doc! { "resolved": true })
        .await
        .expect("update");
    assert_eq!(n, 1);
    let err = s
        .upsert_fenced(
            "c",
            "a",
            &fence(1),
            doc! { "k": "x", "resolved": false },
            doc! {},
        )
        .await
        .expect_err("term 1 may not roll term 2's resolution back");
    assert!(err.is_fenced(), "{err}");
    let d = s
        .collection("c")
        .find_one(doc! {})
        .await
        .expect("find")
        .expect("doc");
    assert_eq!(d.get_bool("resolved").ok(), Some(true));
    assert_eq!(d.get_i64("leader_term").ok(), Some(2));
    drop_mongo_database(&url).await;
}
