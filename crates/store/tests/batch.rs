//! Batched fenced writes against a real Mongo-compatible server: a fenced statement is
//! reported by its key and nothing of its round lands; a newer fence claim stops the next
//! round; a cancelled stop sends nothing; chunks split as configured.

use std::time::Duration;

use mongodb::bson::{Document, doc};
use store::sink::Deadline;
use store::testing::{at, drop_mongo_database, mongo_url};
use store::{Batched, Batching, Fence, FencedWrite, MongoSink, SinkError};
use tokio_util::sync::CancellationToken;

fn fence(term: i64) -> Fence {
    Fence::new("data-manager-auditor", term, format!("pod-{term}"))
}

async fn sink(url: &str) -> MongoSink {
    MongoSink::connect(url, "batch-test", Duration::from_secs(10))
        .await
        .expect("connect")
}

fn upsert(key: &str, v: i32) -> FencedWrite {
    FencedWrite::Upsert {
        key: key.into(),
        set: doc! { "v": v },
        set_on_insert: doc! { "first": v },
    }
}

async fn doc_of(s: &MongoSink, key: &str) -> Document {
    s.collection("c")
        .find_one(doc! { "_id": key })
        .await
        .expect("find")
        .expect("doc")
}

#[tokio::test]
async fn a_fenced_statement_is_named_and_nothing_of_its_round_lands() {
    let url = mongo_url();
    let s = sink(&url).await;
    let now = at(2025, 10, 21, 0, 0, 0);
    // Term 5 wrote k2 (without claiming the fence, so term 4's claim still succeeds).
    s.upsert_fenced("c", "k2", &fence(5), doc! { "v": 50 }, doc! {})
        .await
        .expect("term 5");
    let writes = vec![upsert("k1", 1), upsert("k2", 2), upsert("k3", 3)];
    let err = s
        .write_batched(
            &fence(4),
            now,
            &[("c", writes)],
            Batching::default(),
            &CancellationToken::new(),
        )
        .await
        .expect_err("k2 is fenced");
    match &err {
        SinkError::Fenced {
            collection,
            key,
            term,
        } => assert_eq!((collection.as_str(), key.as_str(), *term), ("c", "k2", 4)),
        other => panic!("expected Fenced, got {other}"),
    }
    let k2 = doc_of(&s, "k2").await;
    assert_eq!(
        (k2.get_i32("v").ok(), k2.get_i64("leader_term").ok()),
        (Some(50), Some(5))
    );
    // The round was one transaction: the statements beside the fenced one did not land.
    let others = s
        .collection("c")
        .count_documents(doc! { "_id": { "$in": ["k1", "k3"] } })
        .await
        .expect("count");
    assert_eq!(others, 0);
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn outcomes_count_statements_and_a_newer_claim_or_a_stop_sends_nothing() {
    let url = mongo_url();
    let s = sink(&url).await;
    let now = at(2025, 10, 21, 0, 0, 0);
    let small = Batching {
        max_statements: 2,
        concurrency: 2,
        ..Batching::default()
    };
    let writes: Vec<_> = (0..5).map(|i| upsert(&format!("k{i}"), i)).collect();
    let many = FencedWrite::UpdateMany {
        filter: doc! { "v": { "$gte": 3 } },
        set: doc! { "big": true },
    };
    let streams = [("c", writes), ("d", vec![upsert("x", 1)])];
    let done = s
        .write_batched(&fence(4), now, &streams, small, &CancellationToken::new())
        .await
        .expect("write");
    let Batched::Done(o) = done else {
        panic!("not stopped")
    };
    assert_eq!((o[0].succeeded, o[0].matched), (5, 5));
    assert_eq!((o[1].succeeded, o[1].fenced.len()), (1, 0));
    let done = s
        .write_batched(
            &fence(4),
            now,
            &[("c", vec![many])],
            small,
            &CancellationToken::new(),
        )
        .await
        .expect("update many");
    let Batched::Done(o) = done else {
        panic!("not stopped")
    };
    assert_eq!(o[0].modified, 2);

    let stopped = CancellationToken::new();
    stopped.cancel();
    let again = [("c", vec![upsert("late", 9)])];
    let b = s
        .write_batched(&fence(4), now, &again, small, &stopped)
        .await;
    assert_eq!(b.expect("stopped"), Batched::Stopped);
    s.claim_fence(&fence(6), now).await.expect("term 6 claims");
    let err = s
        .write_batched(&fence(4), now, &again, small, &CancellationToken::new())
        .await
        .expect_err("fence claimed by a newer term");
    assert!(err.is_fenced(), "{err}");
    let expired = Fence {
        deadline: Deadline::at(tokio::time::Instant::now()),
        ..fence(7)
    };
    let err = s
        .write_batched(&expired, now, &again, small, &CancellationToken::new())
        .await
        .expect_err("deadline");
    assert!(matches!(err, SinkError::DeadlinePassed { .. }), "{err}");
    let n = s
        .collection("c")
        .count_documents(doc! { "_id": "late" })
        .await
        .expect("count");
    assert_eq!(n, 0);
    drop_mongo_database(&url).await;
}

fn insert(key: &str, v: i32) -> FencedWrite {
    FencedWrite::Insert {
        key: key.into(),
        set: doc! { "v": v },
    }
}

#[tokio::test]
async fn an_insert_on_an_existing_key_is_the_fenced_upsert_and_never_overwrites_a_newer_term() {
    let url = mongo_url();
    let s = sink(&url).await;
    let now = at(2025, 10, 21, 0, 0, 0);
    // Term 3 wrote "old" and term 5 "newer" (neither claimed the fence).
    s.upsert_fenced("c", "old", &fence(3), doc! { "v": 30 }, doc! {})
        .await
        .expect("term 3");
    s.upsert_fenced("c", "newer", &fence(5), doc! { "v": 50 }, doc! {})
        .await
        .expect("term 5");
    let once = |writes: Vec<FencedWrite>| {
        let s = s.clone();
        async move {
            s.write_batched(
                &fence(4),
                now,
                &[("c", writes)],
                Batching::default(),
                &CancellationToken::new(),
            )
            .await
        }
    };
    // A new key is inserted, an older term's key is replaced (as the upsert would).
    let done = once(vec![insert("new", 1), insert("old", 2)]).await;
    assert!(matches!(done, Ok(Batched::Done(_))), "{done:?}");
    for (k, v) in [("new", 1), ("old", 2)] {
        let d = doc_of(&s, k).await;
        assert_eq!(d.get_i32("v").ok(), Some(v));
        assert_eq!(d.get_i64("leader_term").ok(), Some(4));
        assert_eq!(d.get_str("leader_identity").ok(), Some("pod-4"));
        assert!(d.get_datetime("written_at").is_ok());
    }
    // A newer term's key stays as it was, and the write is fenced by that key.
    let err = once(vec![insert("newer", 3), insert("other", 4)])
        .await
        .expect_err("newer is fenced");
    assert!(
        matches!(&err, SinkError::Fenced { key, .. } if key == "newer"),
        "{err}"
    );
    let d = doc_of(&s, "newer").await;
    assert_eq!(
        (d.get_i32("v").ok(), d.get_i64("leader_term").ok()),
        (Some(50), Some(5))
    );
    let other = s
        .collection("c")
        .count_documents(doc! { "_id": "other" })
        .await
        .expect("count");
    assert_eq!(other, 0, "the fenced round landed nothing");
    drop_mongo_database(&url).await;
}
