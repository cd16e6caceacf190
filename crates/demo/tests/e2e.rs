//! The whole pipeline, shorter: `dm-demo run --json` against the local NATS and MariaDB, its own
//! SecantusDB, and the real dm-consumer, dm-loadgen, dm-auditor and dm-analytics binaries. The
//! summary's facts are checked against what was injected and what was sent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_dm-demo"))
        .parent()
        .expect("the binary has a directory")
        .to_path_buf()
}

fn findings<'a>(summary: &'a Value, symbol: &str, tf: &str) -> Vec<&'a str> {
    summary["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|d| d["symbol"] == symbol && d["timeframe"] == tf)
        .flat_map(|d| d["findings"].as_array().expect("findings"))
        .map(|f| f["check"].as_str().expect("check"))
        .collect()
}

#[test]
fn demo_pipeline_reports_the_injected_faults_counts_and_analytics() {
    let dir = bin_dir();
    for b in ["dm-consumer", "dm-loadgen", "dm-auditor", "dm-analytics"] {
        assert!(
            dir.join(b).is_file(),
            "{} is missing: build the binaries first (cargo build --bins; make test does)",
            dir.join(b).display()
        );
    }
    let database = format!("dm_demo_t{}", uuid::Uuid::new_v4().simple());
    let out = Command::new(env!("CARGO_BIN_EXE_dm-demo"))
        .args(["run", "--json", "--drop-database", "--database", &database])
        .args(["--symbols", &SYMBOLS.join(",")])
        .args(["--days", "31", "--rate", "200", "--seconds", "3"])
        .args(["--audit-interval", "10", "--analytics-interval", "10"])
        .args(["--timeout", "40"])
        .env_remove("SUPPORTED_PAIRS")
        .output()
        .expect("run dm-demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}); stderr:\n{stderr}"));
    assert!(
        out.status.success(),
        "dm-demo failed; stderr:\n{stderr}\n{summary:#}"
    );
    the_auditor_reported_every_injected_fault(&summary);
    everything_sent_was_counted_kind_by_kind(&summary);
    analytics_cover_every_symbol(&summary);
    if dir.join("dm-api").is_file() {
        the_api_served_every_dataset_and_events_were_published(&summary);
    }
    // A clean shutdown: every service exited 0 after SIGTERM.
    let exits = summary["exits"].as_array().expect("exits");
    assert_eq!(exits.len(), 3 + usize::from(dir.join("dm-api").is_file()));
    for e in exits {
        assert_eq!(e["code"], 0, "{e}");
    }
}

/// The injected faults, as the auditor wrote them to MongoDB.
fn the_auditor_reported_every_injected_fault(summary: &Value) {
    assert!(findings(summary, "BTCUSDT", "1h").contains(&"gap"));
    assert!(findings(summary, "ETHUSDT", "15m").contains(&"ohlc_violation"));
    for s in SYMBOLS {
        assert!(findings(summary, s, "30m").contains(&"stale"), "{s} 30m");
        assert!(findings(summary, s, "5m").is_empty(), "{s} 5m is clean");
    }
    // The seeded trades lose their millisecond collisions, and the auditor says so.
    let trades = findings(summary, "BTCUSDT", "trades");
    assert!(trades.contains(&"trades_missing"), "{trades:?}");
    assert!(trades.contains(&"trade_ms_collision"), "{trades:?}");
    for s in &SYMBOLS[1..] {
        assert_eq!(findings(summary, s, "trades"), ["not_extracted"], "{s}");
    }
    let faults = summary["faults"].as_array().expect("faults");
    assert_eq!(faults.len(), 3 + SYMBOLS.len());
    assert!(faults.iter().all(|f| f["found"] == true), "{faults:#?}");
    assert_eq!(
        summary["audit"].as_array().map(Vec::len),
        Some(SYMBOLS.len() * 6)
    );
}

fn everything_sent_was_counted_kind_by_kind(summary: &Value) {
    let published = summary["loadgen"]["published"].as_u64().expect("published");
    assert_eq!(published, 600);
    assert_eq!(summary["consumer"]["received"].as_u64(), Some(published));
    assert_eq!(summary["consumer"]["rejected"].as_u64(), Some(0));
    let sent: BTreeMap<String, u64> =
        serde_json::from_value(summary["loadgen"]["by_kind"].clone()).expect("by_kind");
    let counted: BTreeMap<String, u64> =
        serde_json::from_value(summary["consumer"]["accepted_by_kind"].clone()).expect("by kind");
    assert_eq!(sent, counted);
    let line = summary["consumer"]["stats_line"]
        .as_str()
        .expect("stats line");
    assert!(line.contains("Message processing stats"), "{line}");
}

/// Analytics documents and values for every symbol.
fn analytics_cover_every_symbol(summary: &Value) {
    let docs = summary["analytics"]["documents"]
        .as_object()
        .expect("documents");
    for s in SYMBOLS {
        assert!(
            docs.values().any(|m| m[s].as_u64().unwrap_or(0) > 0),
            "no analytics document for {s}: {docs:?}"
        );
        assert!(docs["volatility"][s].as_u64().unwrap_or(0) > 0, "{s}");
        let values = summary["analytics"]["values"][s]
            .as_array()
            .expect("values");
        assert!(!values.is_empty(), "{s}");
    }
}

/// dm-api served every audited dataset; the auditor published the first cycle's events (one
/// status per dataset at least) on NATS.
fn the_api_served_every_dataset_and_events_were_published(summary: &Value) {
    let api = &summary["api"];
    assert_eq!(
        api["datasets"].as_u64(),
        Some(SYMBOLS.len() as u64 * 5),
        "{api}"
    );
    assert!(
        api["page"]
            .as_str()
            .is_some_and(|p| p.starts_with("http://127.0.0.1:"))
    );
    assert!(
        api["events"].as_u64().unwrap_or(0) >= SYMBOLS.len() as u64 * 5,
        "{api}"
    );
}
