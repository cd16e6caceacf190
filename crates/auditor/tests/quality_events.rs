//! Data-quality events end to end: `dm-auditor run` (no election) against MariaDB, the
//! Mongo-compatible server and the local NATS; a subscriber on a unique subject receives exactly
//! the transitions of a gap appearing and being repaired, each once, with `Nats-Msg-Id` set.

#![allow(
    clippy::too_many_lines,
    reason = "each scenario is told from start to finish; splitting them into named steps is still to do"
)]

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::AssertSqlSafe;
use store::testing::{MariaDb, candle, mongo_url};
use support::Auditor;
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

#[tokio::test]
async fn a_subscriber_receives_exactly_the_transitions_of_a_gap_appearing_and_repaired() {
    let db = MariaDb::create().await;
    let hour = Utc::now().timestamp() / 3600 * 3600;
    let at = |h: i64| DateTime::<Utc>::from_timestamp(hour - h * 3600, 0).expect("t");
    let rows: Vec<_> = (1..30).map(|h| candle("BTCUSDT", h1(), at(h))).collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let hole: Vec<_> = [10, 11, 12]
        .map(|h| candle("BTCUSDT", h1(), at(h)))
        .to_vec();

    let subject = format!("test.audit.events.{}", uuid::Uuid::new_v4().simple());
    let nats = async_nats::connect(nats_url())
        .await
        .expect("NATS (deploy/local/ensure-nats.sh)");
    let mut sub = nats.subscribe(subject.clone()).await.expect("subscribe");
    nats.flush().await.expect("flush");

    let url = mongo_url();
    let port = free_port();
    let log = std::env::temp_dir().join(format!(
        "dm-auditor-events-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let _auditor = Auditor::start(
        &["run"],
        &[
            ("MYSQL_URI", db.url.clone()),
            ("MONGODB_URL", url.clone()),
            ("SUPPORTED_PAIRS", "BTCUSDT".into()),
            ("AUDIT_TIMEFRAMES", "1h".into()),
            ("AUDIT_INTERVAL", "1s".into()),
            ("PROBE_INTERVAL", "200ms".into()),
            ("DB_TIMEOUT", "5s".into()),
            ("LEADER_ELECTION", "disabled".into()),
            ("METRICS_PORT", port.to_string()),
            ("METRICS_HOST", "127.0.0.1".into()),
            ("NATS_URL", nats_url()),
            ("AUDIT_EVENTS_SUBJECT", subject.clone()),
        ],
        &log,
    );

    let mut messages = Vec::new();
    let cycles = settle(port, 0.0, 3.0, &nats, &mut sub, &mut messages).await;

    let delete = format!(
        "DELETE FROM klines_h1 WHERE symbol = 'BTCUSDT' AND open_time IN ('{}', '{}', '{}')",
        at(10).format("%F %T"),
        at(11).format("%F %T"),
        at(12).format("%F %T"),
    );
    sqlx::query(AssertSqlSafe(delete))
        .execute(&db.pool)
        .await
        .expect("delete");
    let cycles = settle(port, cycles, 3.0, &nats, &mut sub, &mut messages).await;

    db.insert(h1(), "BTCUSDT", &hole).await;
    settle(port, cycles, 3.0, &nats, &mut sub, &mut messages).await;

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
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for (m, e) in messages.iter().zip(&events) {
        assert_eq!(e["schema_version"], 1);
        assert!(e["term"].is_i64(), "{e}");
        let header = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned());
        assert_eq!(header.as_deref(), e["id"].as_str(), "{e}");
    }
    let gap = &events[1]["finding"];
    assert_eq!(gap["start"], at(12).format("%FT%TZ").to_string());
    assert_eq!(gap["severity"], "high");
    assert_eq!(events[3]["finding"]["id"], gap["id"]);
    assert_eq!(
        metric(
            port,
            "data_manager_audit_events_published_total{type=\"status_changed\"}"
        ),
        Some(3.0)
    );
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

#[tokio::test]
async fn events_wait_while_nats_is_down_and_go_out_with_the_same_ids_once_it_is_back() {
    use auditor::dataset::{DatasetAudit, Params};
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
    let mut audit = DatasetAudit::new("BTCUSDT", p, None);
    for h in (0..13).filter(|h| ![5, 6].contains(h)) {
        audit.push(candle(
            "BTCUSDT",
            h1(),
            store::testing::at(2025, 10, 21, h, 0, 0),
        ));
    }
    let fence = store::Fence::new("data-manager-auditor", 3, "a-0");
    events.observe(&sink, &[audit.finish()], &fence).await;
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
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("an event within 5 s")
            .expect("subscription open");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("JSON");
        let header = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.as_str().to_owned());
        assert_eq!(header.as_deref(), v["id"].as_str());
        assert_eq!(v["term"], 3);
        got.push(v["type"].as_str().unwrap_or("").to_owned());
    }
    assert_eq!(got, ["finding_opened", "status_changed"]);

    // A later term compares with what was written (nothing here), not with its own memory.
    let mut again = DatasetAudit::new("BTCUSDT", p, None);
    for h in (0..13).filter(|h| ![5, 6].contains(h)) {
        again.push(candle(
            "BTCUSDT",
            h1(),
            store::testing::at(2025, 10, 21, h, 0, 0),
        ));
    }
    let report = again.finish();
    events
        .observe(&sink, std::slice::from_ref(&report), &fence)
        .await;
    assert_eq!(events.pending(), 0, "same term, nothing changed");
    let next = store::Fence { term: 4, ..fence };
    events.observe(&sink, &[report], &next).await;
    assert_eq!(events.pending(), 2, "a new term reads the baseline again");
    store::testing::drop_mongo_database(&url).await;
}
