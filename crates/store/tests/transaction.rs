//! A round of batched writes commits together with its fence claim, so a stale writer's round
//! lands entirely before a newer term's first write, or not at all, however its commands are
//! delayed on the way to the server.

use std::net::SocketAddr;
use std::time::Duration;

use mongodb::bson::{DateTime, Document, doc};
use store::testing::{at, drop_mongo_database, mongo_url};
use store::{Batched, Batching, Fence, FencedWrite, MongoSink};
use testkit::latency::LatencyProxy;
use tokio_util::sync::CancellationToken;

/// How long each trip between the stale writer and the server takes.
const ONE_WAY: Duration = Duration::from_millis(300);

fn fence(term: i64) -> Fence {
    Fence::new("data-manager-auditor", term, format!("pod-{term}"))
}

fn upsert(key: &str) -> FencedWrite {
    FencedWrite::Upsert {
        key: key.into(),
        set: doc! { "v": 1 },
        set_on_insert: doc! {},
    }
}

async fn sink(url: &str) -> MongoSink {
    MongoSink::connect(url, "transaction-test", Duration::from_secs(20))
        .await
        .expect("connect")
}

/// A sink whose every trip to the server at `url` takes [`ONE_WAY`] longer.
async fn distant_sink(url: &str) -> (MongoSink, LatencyProxy) {
    let parsed = url::Url::parse(url).expect("url");
    let port = parsed.port().expect("port");
    let target: SocketAddr = ([127, 0, 0, 1], port).into();
    let proxy = LatencyProxy::start(target, ONE_WAY).await.expect("proxy");
    let distant = format!(
        "mongodb://127.0.0.1:{}{}?directConnection=true",
        proxy.port(),
        parsed.path()
    );
    (sink(&distant).await, proxy)
}

async fn write(s: &MongoSink, term: i64, keys: &[&str]) -> Result<Batched, store::SinkError> {
    let writes = keys.iter().map(|k| upsert(k)).collect();
    s.write_batched(
        &fence(term),
        at(2025, 10, 21, 0, 0, 0),
        &[("c", writes)],
        Batching::default(),
        &CancellationToken::new(),
    )
    .await
}

/// Every document of `c` as (key, term, server write time).
async fn documents(s: &MongoSink) -> Vec<(String, i64, DateTime)> {
    use futures::TryStreamExt;
    let all: Vec<Document> = s
        .collection("c")
        .find(doc! {})
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("read");
    all.iter()
        .map(|d| {
            (
                d.get_str("_id").expect("_id").to_owned(),
                d.get_i64("leader_term").expect("leader_term"),
                *d.get_datetime("written_at").expect("written_at"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_stale_round_past_its_fence_claim_lands_before_the_newer_terms_first_write_or_not_at_all()
{
    let url = mongo_url();
    let direct = sink(&url).await;
    let (distant, _proxy) = distant_sink(&url).await;
    direct
        .claim_fence(&fence(3), at(2025, 10, 21, 0, 0, 0))
        .await
        .expect("setup");
    // Connected already, so the write's first command leaves at once.
    distant.ping().await.expect("ping through the proxy");
    // Term 4 is far away: its fence claim reaches the server after one trip, its writes after
    // three. Term 5 claims the fence and writes in between.
    let stale = tokio::spawn(async move { write(&distant, 4, &["s1", "s2"]).await });
    tokio::time::sleep(ONE_WAY * 3 / 2).await;
    let newer = write(&direct, 5, &["n1"]).await;
    assert!(matches!(newer, Ok(Batched::Done(_))), "{newer:?}");
    let stale = stale.await.expect("join");

    let docs = documents(&direct).await;
    let first_newer = docs
        .iter()
        .filter(|(_, term, _)| *term == 5)
        .map(|(_, _, t)| *t)
        .min()
        .expect("term 5 wrote");
    let late: Vec<_> = docs
        .iter()
        .filter(|(_, term, t)| *term == 4 && *t > first_newer)
        .collect();
    assert!(
        late.is_empty(),
        "term 4 wrote after term 5: {late:?} (stale round: {stale:?})"
    );
    let stale_keys = docs.iter().filter(|(_, term, _)| *term == 4).count();
    match stale {
        Ok(Batched::Done(_)) => assert_eq!(stale_keys, 2, "a committed round lands whole"),
        Err(e) if e.is_fenced() => assert_eq!(stale_keys, 0, "a fenced round lands nothing"),
        other => panic!("stale round: {other:?}"),
    }
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn a_server_without_transactions_gets_the_same_rounds_fenced_by_their_claim() {
    let server = store::testing::MongoInstance::start_standalone();
    let url = format!("{}/{}", server.base_url, store::testing::unique_name());
    let s = sink(&url).await;
    let done = write(&s, 4, &["a", "b"]).await;
    assert!(matches!(done, Ok(Batched::Done(_))), "{done:?}");
    let written: Vec<_> = documents(&s)
        .await
        .into_iter()
        .map(|(k, t, _)| (k, t))
        .collect();
    assert_eq!(written.len(), 2);
    assert!(written.iter().all(|(_, t)| *t == 4), "{written:?}");
    s.claim_fence(&fence(5), at(2025, 10, 21, 0, 0, 0))
        .await
        .expect("term 5 claims");
    let err = write(&s, 4, &["c"]).await.expect_err("term 4 is fenced");
    assert!(err.is_fenced(), "{err}");
    assert_eq!(
        documents(&s).await.len(),
        2,
        "nothing of the fenced round landed"
    );
}
