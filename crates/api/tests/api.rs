//! dm-api against a real Mongo-compatible server holding the results of a real audit cycle and
//! a real analytics cycle over seeded klines (MariaDB), over real sockets.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::seed::{self, EXPECTED, Server};
use support::{Resp, get};

fn assert_problem(r: &Resp, status: u16, reason: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type(), "application/problem+json", "{}", r.body);
    let p = r.json();
    assert_eq!(p["status"], status);
    assert_eq!(p["reason"], reason, "{p}");
    p
}

#[tokio::test]
async fn datasets_findings_and_analytics_are_those_the_cycles_wrote() {
    let seeded = seed::seeded().await;
    let server = Server::start(&seeded.mongo_url, 0, &[]).await;
    let port = server.port;
    dataset_list_is_sorted_with_status_and_open_findings(port).await;
    one_dataset_has_its_latest_audit_and_history(port).await;
    findings_filter_and_page_with_a_cursor(port).await;
    analytics_are_served_per_timeframe_with_the_matrix(port).await;
    unknown_datasets_are_404_problems(port).await;
    openapi_and_metrics_share_the_port(port).await;
    server.stop().await;
    store::testing::drop_mongo_database(&seeded.mongo_url).await;
}

/// The list: every dataset, with its status and open findings, sorted; and its filters.
async fn dataset_list_is_sorted_with_status_and_open_findings(port: u16) {
    let r = get(port, "/v1/datasets").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type(), "application/json");
    let list = r.json();
    let got: Vec<(String, String, String)> = list["datasets"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["symbol"].as_str().unwrap_or("").to_owned(),
                d["timeframe"].as_str().unwrap_or("").to_owned(),
                d["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, String)> = EXPECTED
        .iter()
        .map(|(s, t, st)| ((*s).into(), (*t).into(), (*st).into()))
        .collect();
    want.sort_by_key(|(s, t, _)| (s.clone(), t != "1h"));
    assert_eq!(got, want);
    let btc = &list["datasets"][0];
    assert_eq!(btc["open_findings"], 1, "{btc}");
    assert_eq!(btc["audited_at"], "2025-10-22T00:30:00Z");
    assert!(btc["quality_score"].as_f64().expect("score") < 100.0);
    let sol = list["datasets"]
        .as_array()
        .expect("array")
        .iter()
        .find(|d| d["symbol"] == "SOLUSDT" && d["timeframe"] == "1h")
        .expect("SOLUSDT 1h");
    assert_eq!(sol["freshness_seconds"], 9000);

    // Filters.
    let r = get(port, "/v1/datasets?status=critical").await.json();
    assert_eq!(r["datasets"].as_array().map(Vec::len), Some(1));
    let r = get(port, "/v1/datasets?symbol=ETHUSDT&timeframe=1h")
        .await
        .json();
    assert_eq!(r["datasets"][0]["status"], "ok");
    assert_eq!(r["datasets"].as_array().map(Vec::len), Some(1));
}

/// One dataset with its history; an inverted range is empty, not an error.
async fn one_dataset_has_its_latest_audit_and_history(port: u16) {
    let r = get(
        port,
        "/v1/datasets/BTCUSDT/1h?from=2025-10-21T00:00:00Z&to=2025-10-23T00:00:00Z",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["latest"]["status"], "critical");
    assert_eq!(d["latest"]["missing_candles"], 3);
    assert_eq!(d["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["open_findings"], 1);
    // An inverted range is empty, not an error.
    let r = get(
        port,
        "/v1/datasets/BTCUSDT/1h?from=2025-10-23T00:00:00Z&to=2025-10-21T00:00:00Z",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["history"], serde_json::json!([]));
}

/// Findings: the gap, open; filters and a cursor walk that covers every finding once.
async fn findings_filter_and_page_with_a_cursor(port: u16) {
    let f = get(port, "/v1/findings?symbol=BTCUSDT&kind=gap")
        .await
        .json();
    assert_eq!(f["findings"].as_array().map(Vec::len), Some(1), "{f}");
    let gap = &f["findings"][0];
    assert_eq!(gap["severity"], "high");
    assert_eq!(gap["start"], "2025-10-21T10:00:00Z");
    assert_eq!(gap["missing_candles"], 3);
    assert_eq!(gap["resolved_at"], Value::Null);
    assert_eq!(f["next_cursor"], Value::Null);
    let all = get(port, "/v1/findings?state=all&limit=500").await.json();
    let total = all["findings"].as_array().map_or(0, Vec::len);
    assert!(total >= 5, "gap, stale and three not_extracted: {all}");
    let mut walked = Vec::new();
    let mut path = "/v1/findings?state=all&limit=2".to_owned();
    loop {
        let page = get(port, &path).await.json();
        for x in page["findings"].as_array().expect("array") {
            walked.push(x["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/findings?state=all&limit=2&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<&str> = all["findings"]
        .as_array()
        .expect("array")
        .iter()
        .map(|x| x["id"].as_str().expect("id"))
        .collect();
    assert_eq!(walked, ids, "pages cover every finding once, in order");
    let resolved = get(port, "/v1/findings?state=resolved").await.json();
    assert_eq!(resolved["findings"].as_array().map(Vec::len), Some(0));
}

/// Analytics: latest per timeframe, and the correlation matrix.
async fn analytics_are_served_per_timeframe_with_the_matrix(port: u16) {
    let r = get(port, "/v1/analytics/volatility/BTCUSDT").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let a = r.json();
    assert_eq!(a["series"][0]["timeframe"], "1h");
    let point = &a["series"][0]["points"][0];
    assert!(point["values"]["rolling_stddev"].is_number(), "{point}");
    assert!(point["values"].get("leader_term").is_none());
    let c = get(port, "/v1/correlation").await.json();
    assert_eq!(
        c["symbols"],
        serde_json::json!(["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    );
    assert_eq!(c["matrix"]["BTCUSDT"]["BTCUSDT"], 1.0);
}

async fn unknown_datasets_are_404_problems(port: u16) {
    assert_problem(
        &get(port, "/v1/datasets/XRPUSDT/1h").await,
        404,
        "unknown_dataset",
    );
    assert_problem(
        &get(port, "/v1/analytics/trend/XRPUSDT").await,
        404,
        "unknown_dataset",
    );
    assert_problem(
        &get(port, "/v1/correlation?timeframe=1d").await,
        404,
        "unknown_dataset",
    );
}

/// The OpenAPI document and the metrics on the same port as the API.
async fn openapi_and_metrics_share_the_port(port: u16) {
    let doc = get(port, "/openapi.json").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let m = get(port, "/metrics").await;
    assert!(
        m.body
            .contains("data_manager_api_requests_total{route=\"/v1/findings\",status=\"200\"}"),
        "{}",
        m.body
    );
}

#[tokio::test]
async fn bad_parameters_are_400_problems_naming_the_parameter() {
    let url = store::testing::mongo_url();
    let server = Server::start(&url, 0, &[]).await;
    let port = server.port;
    for (path, parameter) in [
        ("/v1/datasets?timeframe=7m", "timeframe"),
        ("/v1/datasets?status=fine", "status"),
        ("/v1/datasets?symbol=btc-usdt", "symbol"),
        ("/v1/findings?limit=0", "limit"),
        ("/v1/findings?limit=abc", "limit"),
        ("/v1/findings?limit=99999999999999", "limit"),
        ("/v1/findings?since=yesterday", "since"),
        ("/v1/findings?cursor=zz", "cursor"),
        ("/v1/findings?cursor=7c", "cursor"),
        ("/v1/datasets/BTCUSDT/1h?limit=2001", "limit"),
        ("/v1/datasets/btcusdt/1h", "symbol"),
        ("/v1/datasets/BTCUSDT/2w", "path"),
        ("/v1/analytics/spread/BTCUSDT", "path"),
        ("/v1/datasets/%FF%FE/1h", "path"),
    ] {
        let p = assert_problem(&get(port, path).await, 400, "bad_parameter");
        assert_eq!(p["parameter"], parameter, "{path}: {p}");
    }
    assert_problem(&get(port, "/v2/nothing").await, 404, "no_route");
    // An empty database: an empty list, not an error.
    let r = get(port, "/v1/datasets").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["datasets"], serde_json::json!([]));
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_mongo_is_a_503_problem_and_not_ready_and_hides_the_password() {
    let port = testkit::free_port();
    let url = format!("mongodb://dm:s3cr3t-pw@127.0.0.1:{port}/x");
    let server = Server::start(&url, 0, &["--db-timeout", "1s", "--query-timeout", "1s"]).await;
    let r = get(server.port, "/v1/datasets").await;
    let p = assert_problem(&r, 503, "mongo_unavailable");
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("5"));
    assert!(!r.body.contains("s3cr3t-pw"), "{p}");
    let ready = testkit::eventually(Duration::from_secs(10), || async {
        let r = get(server.port, "/health/readiness").await;
        (r.status == 503 && r.body.contains("\"mongodb\"")).then_some(r)
    })
    .await;
    assert!(!ready.body.contains("s3cr3t-pw"), "{}", ready.body);
    assert_eq!(get(server.port, "/health/liveness").await.status, 200);
    let page = get(server.port, "/").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("cannot be read"), "{}", page.body);
    assert!(!page.body.contains("s3cr3t-pw"));
    server.stop().await;
}
