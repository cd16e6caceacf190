//! `dm-analytics compute` as a process: Series A and B from CSV files, the JSON shape of
//! issue 5 and the published numbers.

use analytics::golden::{series_a, series_b, to_csv};
use serde_json::Value;

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("{name}-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&p, text).expect("write csv");
    p
}

fn compute(args: &[String]) -> (bool, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dm-analytics"))
        .arg("compute")
        .args(args)
        .output()
        .expect("run compute");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rel(a: &Value, expected: f64) -> f64 {
    ((a.as_f64().expect("a number") - expected) / expected).abs()
}

/// Series A's volatility document: the golden values, its metadata and its field order.
fn assert_series_a_volatility(vol: &Value) {
    assert!(rel(&vol["rolling_stddev"], 0.006272639780820264) < 1e-9);
    assert!(rel(&vol["annualized_volatility"], 0.09957506954364673) < 1e-9);
    assert!(rel(&vol["parkinson"], 0.009397256386673486) < 1e-9);
    assert!(rel(&vol["garman_klass"], 0.010052938717483457) < 1e-9);
    assert!(rel(&vol["volatility_of_volatility"], 0.0014256485665722738) < 1e-9);
    assert_eq!(vol["metadata"]["method"], "rolling_stddev");
    assert_eq!(vol["metadata"]["window"], "30d");
    assert_eq!(vol["metadata"]["parameters"]["rolling_window"], 20);
    assert_eq!(vol["metadata"]["completeness"], 100.0);
    assert_eq!(vol["metadata"]["options"]["annualization"], "legacy");
    let field_names: Vec<&str> = vol
        .as_object()
        .expect("o")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        field_names,
        [
            "rolling_stddev",
            "annualized_volatility",
            "parkinson",
            "garman_klass",
            "volatility_of_volatility",
            "metadata"
        ]
    );
}

#[test]
fn series_a_and_b_print_every_metric_correlation_and_the_matrix() {
    let a = write("a", &to_csv(&series_a(720)));
    let b = write("b", &to_csv(&series_b(720)));
    let (ok, v, err) = compute(&[
        "--timeframe".into(),
        "1h".into(),
        "--candles".into(),
        format!("BTCUSDT={}", a.display()),
        "--candles".into(),
        format!("ETHUSDT={}", b.display()),
    ]);
    assert!(ok, "{err}");
    let obj = v.as_object().expect("one object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys, ["BTCUSDT", "ETHUSDT", "correlation_matrix"]);
    let btc = &v["BTCUSDT"];
    let metrics: Vec<&str> = btc
        .as_object()
        .expect("metrics")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        metrics,
        [
            "volatility",
            "volume",
            "trend",
            "deviation",
            "seasonality",
            "regime",
            "correlation"
        ]
    );
    assert_series_a_volatility(&btc["volatility"]);
    let volume = &btc["volume"];
    assert_eq!(volume["total_volume"], 64860.0);
    assert!(rel(&volume["volume_sma"], 2756.5) < 1e-9);
    assert!(rel(&volume["volume_ema"], 2821.007921102365) < 1e-9);
    assert!(rel(&volume["volume_spike_ratio"], 1.1148936170212767) < 1e-9);
    assert_eq!(volume["volume_delta"], 0.0);
    assert_eq!(
        btc["seasonality"]["hourly_pattern"]
            .as_object()
            .map(|m| m.len()),
        Some(24)
    );
    assert_eq!(btc["regime"]["regime"], "transitional");
    assert_eq!(btc["correlation"]["rolling_correlation"], 0.0);
    assert_eq!(btc["correlation"]["cross_correlation_lag"], Value::Null);
    assert!(v["ETHUSDT"]["correlation"]["correlation_matrix"]["BTCUSDT"].is_f64());
    let m = &v["correlation_matrix"];
    assert_eq!(m["timeframe"], "1h");
    assert_eq!(m["timestamp"], "2025-10-30T23:00:00Z");
    assert_eq!(m["matrix"]["BTCUSDT"]["BTCUSDT"], 1.0);
    let _ = std::fs::remove_file(a);
    let _ = std::fs::remove_file(b);
}

#[test]
fn one_symbol_has_no_correlation_and_short_data_is_null() {
    let a = write("short", &to_csv(&series_a(30)));
    let (ok, v, err) = compute(&[
        "--timeframe".into(),
        "1h".into(),
        "--candles".into(),
        format!("BTCUSDT={}", a.display()),
        "--as-of".into(),
        "2025-10-02T06:00:00Z".into(),
        "--option".into(),
        "regime_order=fixed".into(),
    ]);
    assert!(ok, "{err}");
    let btc = v["BTCUSDT"].as_object().expect("metrics");
    assert!(!btc.contains_key("correlation"));
    assert!(v.get("correlation_matrix").is_none());
    // 30 rows: volatility and deviation run; trend (50) and seasonality (100) do not.
    assert!(btc["volatility"].is_object());
    assert_eq!(btc["trend"], Value::Null);
    assert_eq!(btc["seasonality"], Value::Null);
    assert_eq!(
        btc["regime"]["metadata"]["options"]["regime_order"],
        "fixed"
    );
    let _ = std::fs::remove_file(a);
}

#[test]
fn bad_input_fails_with_the_file_and_line() {
    let a = write(
        "bad",
        "open_time,open,high,low,close,volume\n2025-10-01T00:00:00Z,1,2,oops,1,1\n",
    );
    let (ok, _, err) = compute(&[
        "--timeframe".into(),
        "1h".into(),
        "--candles".into(),
        format!("BTCUSDT={}", a.display()),
    ]);
    assert!(!ok);
    assert!(err.contains("line 2") && err.contains("oops"), "{err}");
    let (ok, _, err) = compute(&[
        "--timeframe".into(),
        "1h".into(),
        "--candles".into(),
        format!("BTCUSDT={}", a.display()),
        "--option".into(),
        "regime_order=sideways".into(),
    ]);
    assert!(!ok && err.contains("ANALYTICS_REGIME_ORDER"), "{err}");
    let _ = std::fs::remove_file(a);
}
