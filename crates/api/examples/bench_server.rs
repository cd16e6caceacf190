//! The benchmark server of `make bench-api`: dm-api's router over a SecantusDB holding 1,000
//! datasets' health documents, plus `GET /static`, which answers the bytes `GET /v1/datasets`
//! returns, precomputed. Both go through the same server and middleware, so the difference is
//! what a request costs us: the Mongo reads, decoding and serialising.
//!
//! `cargo run --release -p api --example bench_server -- [DATASETS]` prints `READY <url> <bytes>`.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use mongodb::bson::{Document, doc};

async fn add_datasets(mongo_url: &str, n: usize) {
    let client = mongodb::Client::with_uri_str(mongo_url)
        .await
        .expect("client");
    let db = client.database(&store::mongo_url::database_name(mongo_url));
    let at = store::bson_safe::date(store::testing::at(2025, 10, 22, 0, 30, 0));
    let statuses = ["ok", "warn", "critical", "ok", "ok"];
    let docs: Vec<Document> = (0..n)
        .map(|i| {
            let symbol = format!("SYN{i:04}USDT");
            doc! {
                "_id": format!("{symbol}|1h|2025-10-22T00:30:00Z"),
                "symbol": symbol, "timeframe": "1h", "status": statuses[i % statuses.len()],
                "computed_at": at.clone(), "quality_score": 97.5, "completeness": 99.0,
                "freshness_seconds": 1800_i64, "consistency_score": 95.0, "leader_term": 1_i64,
            }
        })
        .collect();
    for chunk in docs.chunks(500) {
        db.collection::<Document>("health_metrics")
            .insert_many(chunk.to_vec())
            .await
            .expect("insert");
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(1000);
    let url = store::testing::mongo_url();
    add_datasets(&url, n).await;
    let sink = store::MongoSink::connect(&url, "bench", Duration::from_secs(5))
        .await
        .expect("sink");
    store::indexes::ensure_api_indexes(&sink)
        .await
        .expect("indexes");
    let reader = api::read::Reader::new(sink, Duration::from_secs(5));
    let lookback = chrono::Duration::minutes(15);
    let (datasets, _) = api::queries::datasets(&reader, &Default::default(), lookback)
        .await
        .expect("datasets");
    assert_eq!(datasets.len(), n);
    let body: Arc<[u8]> = serde_json::to_vec(&api::model::DatasetList { datasets })
        .expect("json")
        .into();
    let health = runtime::health::Health::new("bench", None);
    health.set("mongodb", true, "ok");
    let state = api::routes::AppState {
        reader,
        health,
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle(),
        lookback,
        page_refresh: 30,
        openapi: Arc::from("{}"),
    };
    let bytes = body.len();
    // The same request middleware as the API routes, so both sides pay for it.
    let static_route = get(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body.to_vec()) }
    })
    .layer(axum::middleware::from_fn(api::metrics::track));
    let router = api::server::router(state, 256).route("/static", static_route);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    println!("READY http://127.0.0.1:{port} {bytes}");
    let shutdown = runtime::shutdown::on_signals().expect("signals");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .expect("serve");
    store::testing::drop_mongo_database(&url).await;
}
