//! dm-api serving the seeded results of a real audit and analytics cycle, for the slow suites
//! (`make test-api`: schemathesis and the browser test).
//!
//! `cargo run -p api --example seeded -- [PORT]` prints `READY http://127.0.0.1:PORT` once
//! serving, and stops on SIGTERM or Ctrl-C.

#[path = "../tests/support/seed.rs"]
mod seed;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let seeded = seed::seeded().await;
    let server = seed::Server::start(&seeded.mongo_url, port, &["--log-level", "warn"]).await;
    println!("READY http://127.0.0.1:{}", server.port);
    let shutdown = runtime::shutdown::on_signals().expect("signals");
    shutdown.cancelled().await;
    server.stop().await;
    store::testing::drop_mongo_database(&seeded.mongo_url).await;
}
