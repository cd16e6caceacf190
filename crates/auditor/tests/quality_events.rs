//! Data-quality events end to end: `dm-auditor run` (no election) against MariaDB, the
//! Mongo-compatible server and the local NATS; a subscriber on a unique subject receives exactly
//! the transitions of a gap appearing and being repaired, each once, with `Nats-Msg-Id` set.

mod support;

use std::time::Duration;

use futures::StreamExt;
use sqlx::AssertSqlSafe;
use store::testing::{MariaDb, candle, mongo_url};
use support::{Auditor, btcusdt_hours, current_hour, hours_before};
use testkit::{eventually, free_port, metric};

fn h1() -> store::Timeframe {
    "1h".parse().expect("1h")
}

fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// (type, finding kind, previous status, status) of an event.
type Seen = (String, Option<String>, Option<String>, String);

fn seen(v: &serde_json::Value) -> Seen {
    (
        v["type"].as_str().unwrap_or("").to_owned(),
        v["finding"]["kind"].as_str().map(str::to_owned),
        v["previous_status"].as_str().map(str::to_owned),
        v["status"].as_str().unwrap_or("").to_owned(),
    )
}

/// Waits until `n` more cycles succeeded after `after`, then drains what arrived.
async fn settle(
    port: u16,
    after: f64,
    n: f64,
    nats: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    into: &mut Vec<async_nats::Message>,
) -> f64 {
    let ok = "data_manager_audit_cycles_total{outcome=\"ok\"}";
    let now = eventually(Duration::from_secs(30), || async {
        metric(port, ok).filter(|v| *v >= after + n)
    })
    .await;
    nats.flush().await.expect("flush");
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        into.push(m);
    }
    now
}

/// A subscription to a unique subject on the local NATS.
async fn subscribe_to_a_unique_subject() -> (String, async_nats::Client, async_nats::Subscriber) {
    let subject = format!("test.audit.events.{}", uuid::Uuid::new_v4().simple());
    let nats = async_nats::connect(nats_url())
        .await
        .expect("NATS (deploy/local/ensure-nats.sh)");
    let sub = nats.subscribe(subject.clone()).await.expect("subscribe");
    nats.flush().await.expect("flush");
    (subject, nats, sub)
}

/// `dm-auditor run` without election, auditing BTCUSDT 1h every second and publishing its
/// events to `subject`.
fn start_publishing_auditor(
    mysql: &str,
    mongo: &str,
    port: u16,
    subject: &str,
    log: &std::path::Path,
) -> Auditor {
    Auditor::start(
        &["run"],
        &[
            ("MYSQL_URI", mysql.to_owned()),
            ("MONGODB_URL", mongo.to_owned()),
            ("SUPPORTED_PAIRS", "BTCUSDT".into()),
            ("AUDIT_TIMEFRAMES", "1h".into()),
            ("AUDIT_INTERVAL", "1s".into()),
            ("PROBE_INTERVAL", "200ms".into()),
            ("DB_TIMEOUT", "5s".into()),
            ("LEADER_ELECTION", "disabled".into()),
            ("METRICS_PORT", port.to_string()),
            ("METRICS_HOST", "127.0.0.1".into()),
            ("NATS_URL", nats_url()),
            ("AUDIT_EVENTS_SUBJECT", subject.to_owned()),
        ],
        log,
    )
}

/// Deletes BTCUSDT's 1h candles opening `hours` hours before `hour`.
async fn delete_candles(db: &MariaDb, hour: i64, hours: [i64; 3]) {
    let [a, b, c] = hours.map(|h| hours_before(hour, h).format("%F %T").to_string());
    let delete = format!(
        "DELETE FROM klines_h1 WHERE symbol = 'BTCUSDT' AND open_time IN ('{a}', '{b}', '{c}')"
    );
    sqlx::query(AssertSqlSafe(delete))
        .execute(&db.pool)
        .await
        .expect("delete");
}

/// Exactly the five transitions of a first status, a gap opening (critical) and its repair
/// (ok), each with a schema version, a term and `Nats-Msg-Id` equal to the event's id.
fn assert_exactly_the_gap_transitions(
    messages: &[async_nats::Message],
    hour: i64,
    port: u16,
    log: &std::path::Path,
) {
    let events: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| serde_json::from_slice(&m.payload).expect("JSON event"))
        .collect();
    let got: Vec<Seen> = events.iter().map(seen).collect();
    let s = |x: &str| Some(x.to_owned());
    let want: Vec<Seen> = vec![
        ("status_changed".into(), None, None, "ok".into()),
        ("finding_opened".into(), s("gap"), None, "critical".into()),
        ("status_changed".into(), None, s("ok"), "critical".into()),
        ("finding_resolved".into(), s("gap"), None, "ok".into()),
        ("status_changed".into(), None, s("critical"), "ok".into()),
    ];
    assert_eq!(
        got,
        want,
        "log: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    for (m, e) in messages.iter().zip(&events) {
        assert_eq!(e["schema_version"], 1);
        assert!(e["term"].is_i64(), "{e}");
        assert_eq!(msg_id(m).as_deref(), e["id"].as_str(), "{e}");
    }
    let gap = &events[1]["finding"];
    assert_eq!(
        gap["start"],
        hours_before(hour, 12).format("%FT%TZ").to_string()
    );
    assert_eq!(gap["severity"], "high");
    assert_eq!(events[3]["finding"]["id"], gap["id"]);
    assert_eq!(
        metric(
            port,
            "data_manager_audit_events_published_total{type=\"status_changed\"}"
        ),
        Some(3.0)
    );
}

/// The `Nats-Msg-Id` header of `m`.
fn msg_id(m: &async_nats::Message) -> Option<String> {
    m.headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_owned())
}

#[tokio::test]
async fn a_subscriber_receives_exactly_the_transitions_of_a_gap_appearing_and_repaired() {
    let db = MariaDb::create().await;
    let hour = current_hour();
    db.insert(h1(), "BTCUSDT", &btcusdt_hours(hour, 1..30))
        .await;
    let hole = btcusdt_hours(hour, [10, 11, 12]);
    let (subject, nats, mut sub) = subscribe_to_a_unique_subject().await;
    let url = mongo_url();
    let port = free_port();
    let log = std::env::temp_dir().join(format!(
        "dm-auditor-events-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let _auditor = start_publishing_auditor(&db.url, &url, port, &subject, &log);

    let mut messages = Vec::new();
    let cycles = settle(port, 0.0, 3.0, &nats, &mut sub, &mut messages).await;
    delete_candles(&db, hour, [10, 11, 12]).await;
    let cycles = settle(port, cycles, 3.0, &nats, &mut sub, &mut messages).await;
    db.insert(h1(), "BTCUSDT", &hole).await;
    settle(port, cycles, 3.0, &nats, &mut sub, &mut messages).await;

    assert_exactly_the_gap_transitions(&messages, hour, port, &log);
    store::testing::drop_mongo_database(&url).await;
}

/// A nats-server this test owns, on `port`; killed on drop.
struct OwnNats(std::process::Child);

impl OwnNats {
    fn start(port: u16) -> OwnNats {
        let bin = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("nats-server (deploy/local/ensure-nats.sh installs it)");
        let child = std::process::Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnNats(child)
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// BTCUSDT 1h's report over 2025-10-21 00:00 to 12:00 without 05:00 and 06:00: a gap.
fn audit_with_a_gap(p: auditor::dataset::Params) -> auditor::dataset::DatasetReport {
    let mut audit = auditor::dataset::DatasetAudit::new("BTCUSDT", p, None);
    for h in (0..13).filter(|h| ![5, 6].contains(h)) {
        audit.push(candle(
            "BTCUSDT",
            h1(),
            store::testing::at(2025, 10, 21, h, 0, 0),
        ));
    }
    audit.finish()
}

/// The types of the next `n` events on `sub`, each within 5 s, each of term 3 with
/// `Nats-Msg-Id` equal to its id.
async fn receive_term_3_events(sub: &mut async_nats::Subscriber, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("an event within 5 s")
            .expect("subscription open");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
        assert_eq!(msg_id(&m).as_deref(), v["id"].as_str());
        assert_eq!(v["term"], 3);
        got.push(v["type"].as_str().unwrap_or("").to_owned());
    }
    got
}

#[tokio::test]
async fn events_wait_while_nats_is_down_and_go_out_with_the_same_ids_once_it_is_back() {
    use auditor::dataset::Params;
    use auditor::quality_events::{EventArgs, QualityEvents};

    let port = free_port();
    let subject = format!("test.audit.events.{}", uuid::Uuid::new_v4().simple());
    let mut events = QualityEvents::new(EventArgs {
        nats_url: Some(runtime::redact::SecretUrl::new(format!(
            "nats://127.0.0.1:{port}"
        ))),
        subject: subject.clone(),
        timeout: runtime::config::Seconds(Duration::from_secs(1)),
    });
    let url = mongo_url();
    let sink = store::MongoSink::connect(&url, "events-test", Duration::from_secs(5))
        .await
        .expect("sink");
    let p = Params {
        now: store::testing::at(2025, 10, 21, 13, 30, 0),
        window: 86_400,
        timeframe: h1(),
        tolerance: 60,
        max_lag: 7_200,
        profile: auditor::score::Profile::V3,
        max_row_findings: 100,
    };
    let fence = store::Fence::new("data-manager-auditor", 3, "a-0");
    events.observe(&sink, &[audit_with_a_gap(p)], &fence).await;
    assert_eq!(events.pending(), 2, "a gap opened and a first status");

    // NATS is down: the publish fails, nothing is lost, the cycle would go on.
    events.publish().await;
    assert_eq!(events.pending(), 2);

    let _nats = OwnNats::start(port);
    let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("connect");
    let mut sub = client.subscribe(subject).await.expect("subscribe");
    client.flush().await.expect("flush");
    events.publish().await;
    assert_eq!(events.pending(), 0);
    assert_eq!(
        receive_term_3_events(&mut sub, 2).await,
        ["finding_opened", "status_changed"]
    );

    // A later term compares with what was written (nothing here), not with its own memory.
    let report = audit_with_a_gap(p);
    events
        .observe(&sink, std::slice::from_ref(&report), &fence)
        .await;
    assert_eq!(events.pending(), 0, "same term, nothing changed");
    let next = store::Fence { term: 4, ..fence };
    events.observe(&sink, &[report], &next).await;
    assert_eq!(events.pending(), 2, "a new term reads the baseline again");
    store::testing::drop_mongo_database(&url).await;
}
