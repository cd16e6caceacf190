//! The worked examples of `docs/audit-rules.md` on real MariaDB (extractor DDL) through `once`,
//! and the Mongo documents it writes on a real Mongo-compatible server.

use chrono::{DateTime, Duration, Timelike, Utc};
use clap::Parser;
use mongodb::bson::{Document, doc};
use store::testing::{MariaDb, at, candle, drop_mongo_database, mongo_url};
use store::{Kline, Timeframe};

use auditor::config::{Cli, Command, OnceArgs};
use auditor::dataset::{DatasetReport, Status};
use auditor::finding::{Check, Severity};

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn args(db: &MariaDb, mongo: Option<&str>, now: DateTime<Utc>, extra: &[&str]) -> OnceArgs {
    let now = now.to_rfc3339();
    let mut argv = vec![
        "dm-auditor",
        "once",
        "--mysql-uri",
        &db.url,
        "--audit-timeframes",
        "1h",
        "--supported-pairs",
        "BTCUSDT",
        "--now",
        &now,
    ];
    match mongo {
        // These cycles are dated in the past: keep their health history from the TTL sweep.
        Some(url) => argv.extend(["--mongodb-url", url, "--health-history-days", "3650"]),
        None => argv.push("--no-write"),
    }
    argv.extend(extra);
    match Cli::try_parse_from(argv).expect("valid args").command {
        Command::Once(a) => *a,
        Command::Run(_) => unreachable!("once"),
    }
}

async fn audit(db: &MariaDb, now: DateTime<Utc>, extra: &[&str]) -> DatasetReport {
    let a = args(db, None, now, extra);
    let settings = a.audit.settings().expect("settings");
    let mut r = auditor::once::once(&a, &settings)
        .await
        .expect("once")
        .reports;
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn hourly(from: DateTime<Utc>, hours: i64) -> Vec<Kline> {
    (0..hours)
        .map(|h| candle("BTCUSDT", h1(), from + Duration::hours(h)))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[tokio::test]
async fn a_gap_in_the_middle_is_one_high_gap_with_or_without_lag() {
    let db = MariaDb::create().await;
    let rows: Vec<_> = hourly(at(2025, 10, 21, 1, 0, 0), 23)
        .into_iter()
        .filter(|k| ![5, 6].contains(&k.open_time.hour()))
        .collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let r = audit(&db, at(2025, 10, 22, 0, 30, 0), &[]).await;
    assert_eq!(r.findings.len(), 1);
    let g = &r.findings[0];
    assert_eq!((g.check, g.severity), (Check::Gap, Severity::High));
    assert_eq!(
        (g.start, g.end),
        (
            Some(at(2025, 10, 21, 5, 0, 0)),
            Some(at(2025, 10, 21, 7, 0, 0))
        )
    );
    assert_eq!(
        (g.missing_candles, g.duration_seconds),
        (Some(2), Some(7_200))
    );
    let s = r.scores.expect("scores");
    assert!(close(s.completeness.expect("c"), 100.0 * 19.0 / 21.0));
    assert!(close(s.quality, 92.190_476_190_476_19), "{s:?}");
    assert_eq!(r.freshness_seconds, Some(1_800));
    assert_eq!(r.status, Status::Critical);
    // MariaDB truncates the extractor's close time (…:59.999) to open + I − 1 s.
    assert_eq!(r.convention.as_str(), "truncated");

    let zero = audit(
        &db,
        at(2025, 10, 22, 0, 30, 0),
        &["--audit-max-lag", "1h=1"],
    )
    .await;
    // The same window with L ≈ 0 (L must be > 0): due slots 01:00 … 23:00, the same single gap.
    assert_eq!(zero.counts.due_slots, 23);
    assert_eq!(zero.counts.gaps_count, 1);
}

#[tokio::test]
async fn a_trailing_outage_is_a_high_gap_and_stale() {
    let db = MariaDb::create().await;
    db.insert(h1(), "BTCUSDT", &hourly(at(2025, 10, 21, 1, 0, 0), 18))
        .await;
    let r = audit(&db, at(2025, 10, 22, 0, 30, 0), &[]).await;
    let kinds: Vec<_> = r.findings.iter().map(|f| (f.check, f.severity)).collect();
    assert_eq!(
        kinds,
        [(Check::Gap, Severity::High), (Check::Stale, Severity::High)]
    );
    assert_eq!(r.findings[0].start, Some(at(2025, 10, 21, 19, 0, 0)));
    assert_eq!(r.findings[0].missing_candles, Some(3));
    assert_eq!(r.freshness_seconds, Some(19_800));
    assert!(close(r.scores.expect("s").quality, 70.285_714_285_714_29));
}

#[tokio::test]
async fn health_vectors_score_a_full_a_duplicated_and_an_empty_window() {
    let now = at(2025, 10, 21, 14, 30, 0);
    // H1: a full window.
    let db = MariaDb::create().await;
    db.insert(h1(), "BTCUSDT", &hourly(at(2025, 10, 20, 15, 0, 0), 23))
        .await;
    let r = audit(&db, now, &[]).await;
    assert_eq!((r.status, r.freshness_seconds), (Status::Ok, Some(1_800)));
    assert!(close(r.scores.expect("s").quality, 100.0));
    let legacy = audit(&db, now, &["--audit-score-profile", "legacy_v1"]).await;
    assert!(close(
        legacy.scores.expect("s").quality,
        79.916_666_666_666_67
    ));
    // H3: a second row at 10:00 and at 11:00 (another id, as the primary key forces).
    let mut dups = Vec::new();
    for h in [10, 11] {
        let mut k = candle("BTCUSDT", h1(), at(2025, 10, 21, h, 0, 0));
        k.id = format!("{}_b", k.id);
        dups.push(k);
    }
    db.insert(h1(), "BTCUSDT", &dups).await;
    let r = audit(&db, now, &[]).await;
    let s = r.scores.expect("s");
    assert_eq!(
        (
            r.counts.duplicate_timestamps,
            r.counts.duplicate_rows,
            r.counts.invalid_rows
        ),
        (2, 2, 0)
    );
    assert!(
        close(s.completeness.expect("c"), 100.0)
            && close(s.consistency, 90.0)
            && close(s.quality, 96.0)
    );
    assert_eq!(r.status, Status::Warn);

    // H2: rows exist, none in the window.
    let db2 = MariaDb::create().await;
    db2.insert(h1(), "BTCUSDT", &hourly(at(2025, 10, 19, 10, 0, 0), 11))
        .await;
    let r = audit(&db2, now, &[]).await;
    assert_eq!(r.status, Status::NoData);
    let g = &r.findings[0];
    assert_eq!(
        (g.start, g.end, g.missing_candles, g.duration_seconds),
        (
            Some(at(2025, 10, 19, 21, 0, 0)),
            Some(at(2025, 10, 21, 12, 0, 0)),
            Some(39),
            Some(140_400)
        )
    );
    assert_eq!(r.freshness_seconds, Some(149_400));
    assert!(
        r.findings
            .iter()
            .any(|f| f.check == Check::Stale && f.severity == Severity::High)
    );
    assert!(close(r.scores.expect("s").quality, 0.0));
}

#[tokio::test]
async fn each_row_check_fires_on_its_crafted_candle() {
    let db = MariaDb::create().await;
    let d = |s: &str| s.parse().expect("decimal");
    let base = |h: u32| {
        let mut k = candle("BTCUSDT", h1(), at(2025, 10, 21, h, 0, 0));
        k.extracted_at = k.open_time + Duration::seconds(4_203); // 15:10:03 for 14:00
        k
    };
    let mut rows = Vec::new();
    let mut k = base(1);
    k.close_time = k.open_time + Duration::hours(1);
    rows.push(k); // rounded: valid
    let mut k = base(2);
    k.high = d("100.2");
    rows.push(k);
    let mut k = base(3);
    k.low = d("100.1");
    rows.push(k);
    let mut k = base(4);
    k.open = d("0");
    k.low = d("0");
    k.close = d("100");
    rows.push(k);
    let mut k = base(5);
    k.volume = d("-1");
    rows.push(k);
    let mut k = candle("BTCUSDT", h1(), at(2025, 10, 21, 6, 0, 30));
    k.extracted_at = at(2025, 10, 21, 7, 10, 3);
    rows.push(k);
    let mut k = base(7);
    k.close_time = at(2025, 10, 21, 7, 59, 0);
    rows.push(k);
    let mut k = base(8);
    k.extracted_at = at(2025, 10, 21, 8, 10, 3);
    rows.push(k);
    let mut k = base(9);
    k.id = "BTCUSDT_1".into();
    rows.push(k);
    let mut k = base(10);
    k.interval = "60m".into();
    rows.push(k);
    rows.extend((11..14).map(base));
    db.insert(h1(), "BTCUSDT", &rows).await;

    let r = audit(
        &db,
        at(2025, 10, 21, 14, 30, 0),
        &["--audit-window", "50400"],
    )
    .await;
    let found: Vec<(Check, u32)> = r
        .findings
        .iter()
        .filter(|f| f.check.is_row_level())
        .map(|f| (f.check, f.start.expect("open time").hour()))
        .collect();
    assert_eq!(
        found,
        [
            (Check::OhlcViolation, 2),
            (Check::OhlcViolation, 3),
            (Check::BadPrice, 4),
            (Check::BadVolume, 5),
            (Check::Misaligned, 6),
            (Check::CloseTimeMismatch, 7),
            (Check::PartialCandle, 8),
            (Check::IdMismatch, 9),
            (Check::IntervalMismatch, 10),
        ]
    );
    assert_eq!(r.counts.invalid_rows, 9);
    assert_eq!(
        r.counts.filled_slots, r.counts.due_slots,
        "the misaligned row fills 06:00"
    );
    assert_eq!(r.convention.as_str(), "mixed");
}

#[tokio::test]
async fn missing_table_and_unextracted_symbol_are_informational() {
    let db = MariaDb::create().await;
    let a = {
        let now = "2025-10-21T14:30:00Z";
        let argv = [
            "dm-auditor",
            "once",
            "--mysql-uri",
            &db.url,
            "--audit-timeframes",
            "1m,1h",
            // τ must stay below half of the shortest interval (30 s for 1m).
            "--gap-tolerance-seconds",
            "20",
            "--supported-pairs",
            "SOLUSDT",
            "--now",
            now,
            "--no-write",
        ];
        match Cli::try_parse_from(argv).expect("args").command {
            Command::Once(a) => *a,
            Command::Run(_) => unreachable!(),
        }
    };
    let settings = a.audit.settings().expect("settings");
    let r = auditor::once::once(&a, &settings)
        .await
        .expect("once")
        .reports;
    let statuses: Vec<_> = r
        .iter()
        .map(|r| {
            (
                r.timeframe.label(),
                r.status,
                r.findings[0].check,
                r.findings[0].severity,
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (
                "1m",
                Status::TableMissing,
                Check::TableMissing,
                Severity::Info
            ),
            (
                "1h",
                Status::NotExtracted,
                Check::NotExtracted,
                Severity::Info
            )
        ]
    );
    let tables: Vec<String> = sqlx::query_scalar("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'klines_m1'")
        .fetch_all(&db.pool)
        .await
        .expect("query");
    assert!(tables.is_empty(), "the audit must never create a table");
}

async fn ids(url: &str, coll: &str) -> Vec<String> {
    let client = mongodb::Client::with_uri_str(url).await.expect("client");
    let db = client.database(&store::mongo_url::database_name(url));
    let mut cursor = db
        .collection::<Document>(coll)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .await
        .expect("find");
    let mut out = Vec::new();
    while cursor.advance().await.expect("cursor") {
        let d = cursor.deserialize_current().expect("doc");
        out.push(d.get_str("_id").expect("string id").to_owned());
    }
    out
}

#[tokio::test]
async fn two_cycles_over_the_same_data_leave_the_same_documents() {
    let db = MariaDb::create().await;
    let rows: Vec<_> = hourly(at(2025, 10, 21, 1, 0, 0), 23)
        .into_iter()
        .filter(|k| ![5, 6].contains(&k.open_time.hour()))
        .collect();
    db.insert(h1(), "BTCUSDT", &rows).await;
    let url = mongo_url();
    let now = at(2025, 10, 22, 0, 30, 0);
    // Klines only: the trades datasets have their own tests (tests/trades.rs).
    let a = args(&db, Some(&url), now, &["--audit-trades", "false"]);
    let settings = a.audit.settings().expect("settings");
    auditor::once::once(&a, &settings).await.expect("first");
    let (logs1, health1) = (
        ids(&url, "audit_logs").await,
        ids(&url, "health_metrics").await,
    );
    auditor::once::once(&a, &settings).await.expect("second");
    assert_eq!(ids(&url, "audit_logs").await, logs1);
    assert_eq!(ids(&url, "health_metrics").await, health1);
    assert_eq!(logs1, ["BTCUSDT|1h|gap|2025-10-21T05:00:00Z"]);
    assert_eq!(health1, ["BTCUSDT|1h|2025-10-22T00:30:00Z"]);

    // An hour later the same gap is upserted in place (one more health document), and a gap
    // that was repaired is marked resolved.
    let later = args(&db, Some(&url), now + Duration::hours(1), &[]);
    auditor::once::once(&later, &settings).await.expect("later");
    assert_eq!(ids(&url, "audit_logs").await, logs1);
    assert_eq!(ids(&url, "health_metrics").await.len(), 2);
    db.insert(h1(), "BTCUSDT", &hourly(at(2025, 10, 21, 5, 0, 0), 2))
        .await;
    let repaired = args(&db, Some(&url), now + Duration::hours(2), &[]);
    let w = auditor::once::once(&repaired, &settings)
        .await
        .expect("repaired")
        .written
        .expect("written");
    assert_eq!(w.resolved, 1);

    let client = mongodb::Client::with_uri_str(&url).await.expect("client");
    let coll = client
        .database(&store::mongo_url::database_name(&url))
        .collection::<Document>("audit_logs");
    let gap = coll
        .find_one(doc! {})
        .await
        .expect("find")
        .expect("gap doc");
    assert_eq!(gap.get_str("kind").ok(), Some("gap"));
    assert_eq!(gap.get_str("severity").ok(), Some("high"));
    assert_eq!(gap.get_i64("missing_candles").ok(), Some(2));
    assert_eq!(gap.get_i64("leader_term").ok(), Some(0));
    assert!(gap.get_datetime("resolved_at").is_ok(), "{gap:?}");
    assert!(
        gap.get_datetime("first_seen").expect("first_seen")
            < gap.get_datetime("last_seen").expect("last_seen")
    );
    let health = client
        .database(&store::mongo_url::database_name(&url))
        .collection::<Document>("health_metrics");
    let h = health
        .find_one(doc! { "_id": "BTCUSDT|1h|2025-10-22T00:30:00Z" })
        .await
        .expect("find")
        .expect("health");
    assert!(close(
        h.get_f64("quality_score").expect("q"),
        92.190_476_190_476_19
    ));
    assert_eq!(h.get_str("status").ok(), Some("critical"));
    assert_eq!(h.get_i64("due_slots").ok(), Some(21));
    let idx = health.list_index_names().await.expect("indexes");
    assert!(
        idx.contains(&"symbol_timeframe_computed_at".to_owned()),
        "{idx:?}"
    );
    drop_mongo_database(&url).await;
}

#[tokio::test]
async fn once_from_an_older_term_is_fenced_after_a_newer_term_wrote() {
    let db = MariaDb::create().await;
    db.insert(h1(), "BTCUSDT", &hourly(at(2025, 10, 21, 1, 0, 0), 18))
        .await;
    let url = mongo_url();
    let now = at(2025, 10, 22, 0, 30, 0);
    let newer = args(&db, Some(&url), now, &["--term", "7"]);
    let settings = newer.audit.settings().expect("settings");
    auditor::once::once(&newer, &settings)
        .await
        .expect("term 7 writes");
    let older = args(&db, Some(&url), now, &["--term", "6"]);
    let err = auditor::once::once(&older, &settings)
        .await
        .expect_err("term 6 is fenced");
    assert!(
        matches!(
            &err,
            auditor::once::OnceError::Write(auditor::write::WriteError::Sink(e)) if e.is_fenced()
        ),
        "{err}"
    );
    drop_mongo_database(&url).await;
}
