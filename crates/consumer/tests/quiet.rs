//! Quiet by construction: a storm of rejects of every reason and a 30 s NATS outage add only
//! a handful of connection lines to the stats lines at INFO.

mod support;

use std::time::Duration;

use support::{Consumer, NatsServer, Until, publish, unique_subject};

const WAIT: Duration = Duration::from_secs(60);
const PER_REASON: usize = 100_000;

/// `PER_REASON` bodies for each reject reason.
fn rejects() -> Vec<Vec<u8>> {
    let mut out = Vec::with_capacity(4 * PER_REASON);
    for i in 0..PER_REASON {
        out.push(format!("not json {i}").into_bytes());
        out.push(format!(r#"{{"data":{i}}}"#).into_bytes());
        out.push(format!(r#"{{"e":"bogus{i}","s":"BTCUSDT"}}"#).into_bytes());
        out.push(format!(r#"{{"e":"trade","s":"BAD-{i}"}}"#).into_bytes());
    }
    out
}

#[tokio::test]
async fn rejects_and_an_outage_add_only_a_handful_of_lines_at_info() {
    let mut server = NatsServer::start();
    let subject = unique_subject("quiet");
    let consumer = Consumer::start(
        &server.url(),
        &subject,
        &[
            ("STATS_INTERVAL", "5s"),
            ("LOG_LEVEL", "info,consumer=info"),
            ("NATS_SUBSCRIPTION_CAPACITY", "500000"),
        ],
    );
    consumer.wait_readiness(200, WAIT).await;
    publish(&server.url(), &subject, rejects(), Until::Flushed).await;
    for reason in ["invalid_json", "no_payload", "unknown_kind", "no_symbol"] {
        consumer
            .wait_metric(
                &format!("data_manager_messages_rejected_total{{reason=\"{reason}\"}}"),
                PER_REASON as f64,
                WAIT,
            )
            .await;
    }
    server.kill();
    consumer.wait_readiness(503, WAIT).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    server.restart();
    consumer.wait_readiness(200, WAIT).await;

    let logs = consumer.logs();
    let other: Vec<&str> = logs
        .lines()
        .filter(|l| !l.contains("Message processing stats"))
        .collect();
    // Start-up (2), the disconnect, the reconnect, and room for a throttled repeat or two.
    assert!(
        other.len() <= 6,
        "{} lines besides the stats lines:\n{}",
        other.len(),
        other.join("\n")
    );
    assert!(!logs.contains("not json"), "no reject sample at INFO");
    let stats = logs
        .lines()
        .filter(|l| l.contains("Message processing stats"))
        .count();
    assert!(
        stats >= 6,
        "one stats line per interval through the outage: {stats}"
    );
}
