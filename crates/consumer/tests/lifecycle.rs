//! Honest accounting at the edges of the process's life: messages the NATS client drops while
//! the consumer is frozen are counted exactly, and SIGTERM under load loses nothing.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Consumer, NatsServer, Until, publish, unique_subject};
use testkit::eventually;

const WAIT: Duration = Duration::from_secs(60);
const RECEIVED: &str = "data_manager_messages_received_total";
const DROPPED: &str = "data_manager_nats_dropped_messages_total";

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("running kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn bodies(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut mix = loadgen::Mix::new(seed);
    (0..n)
        .map(|_| mix.next_message(1_761_055_392_345).2)
        .collect()
}

#[tokio::test]
async fn frozen_consumer_counts_every_message_as_received_or_dropped() {
    let server = NatsServer::start();
    let subject = unique_subject("sigstop");
    let consumer = Consumer::start(
        &server.url(),
        &subject,
        &[
            ("NATS_SUBSCRIPTION_CAPACITY", "16"),
            ("FLUSH_INTERVAL", "100ms"),
        ],
    );
    consumer.wait_readiness(200, WAIT).await;
    const N: usize = 60_000;
    signal(consumer.pid(), "-STOP");
    // The server buffers what the frozen client cannot read; on SIGCONT the client reads it
    // faster than the loop takes it from a 16-message buffer, and drops the rest.
    publish(&server.url(), &subject, bodies(N, 3), Until::Flushed).await;
    signal(consumer.pid(), "-CONT");
    let (received, dropped) = eventually(WAIT, || async {
        let m = consumer.metrics()?;
        let r = m.get(RECEIVED).copied().unwrap_or(0.0);
        let d = m.get(DROPPED).copied().unwrap_or(0.0);
        (r + d >= N as f64).then_some((r, d))
    })
    .await;
    // Nothing more may appear once everything is accounted for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(consumer.metric(RECEIVED), received);
    assert_eq!(consumer.metric(DROPPED), dropped);
    assert_eq!(
        received + dropped,
        N as f64,
        "published = counted + dropped"
    );
    assert!(dropped > 0.0, "the scenario must make the client drop");
    assert!(received > 0.0);
}

/// The total on the final stats line (interval lines are 60 s apart in these tests, so the final
/// line holds the whole run), and the line itself.
fn final_total(logs: &str) -> (u64, String) {
    let final_line = logs
        .lines()
        .find(|l| l.contains("Message processing stats") && l.contains("final"))
        .unwrap_or_else(|| panic!("no final stats line:\n{logs}"))
        .to_owned();
    let total = final_line
        .split("total=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("total= on the final line");
    (total, final_line)
}

/// A clean exit whose final stats line counted all `n` messages and dropped none.
fn assert_exited_zero_counting_all(status: std::process::ExitStatus, logs: &str, n: u64) {
    assert_eq!(status.code(), Some(0), "{logs}");
    let (total, final_line) = final_total(logs);
    assert_eq!(total, n, "{final_line}");
    assert!(final_line.contains("slow_consumer=0,"), "{final_line}");
}

#[tokio::test]
async fn sigterm_under_load_counts_every_published_message() {
    let server = NatsServer::start();
    let subject = unique_subject("term-load");
    let mut consumer = Consumer::start(
        &server.url(),
        &subject,
        &[
            ("STATS_INTERVAL", "60s"),
            ("NATS_SUBSCRIPTION_CAPACITY", "400000"),
        ],
    );
    consumer.wait_readiness(200, WAIT).await;
    const N: usize = 200_000;
    publish(&server.url(), &subject, bodies(N, 8), Until::Flushed).await;
    // Published and flushed to the server; the consumer is still working through them.
    let status = consumer.terminate(WAIT);
    assert_exited_zero_counting_all(status, &consumer.logs(), N as u64);
}

// The worst case for a drain, made deterministic: the consumer is frozen while the server routes
// a backlog to it, and it wakes up to SIGTERM with all of that backlog still on the wire.
#[tokio::test]
async fn sigterm_with_a_backlog_on_the_wire_counts_every_message() {
    let server = NatsServer::start();
    let subject = unique_subject("term-backlog");
    let mut consumer = Consumer::start(
        &server.url(),
        &subject,
        &[
            ("STATS_INTERVAL", "60s"),
            ("NATS_SUBSCRIPTION_CAPACITY", "400000"),
        ],
    );
    consumer.wait_readiness(200, WAIT).await;
    const N: usize = 50_000;
    signal(consumer.pid(), "-STOP");
    publish(&server.url(), &subject, bodies(N, 9), Until::Routed).await;
    signal(consumer.pid(), "-TERM");
    signal(consumer.pid(), "-CONT");
    let status = consumer.wait_exit(WAIT);
    assert_exited_zero_counting_all(status, &consumer.logs(), N as u64);
}

// The server comes back with other credentials (a rotated token): every reconnect is refused.
// The consumer must stay up and unready, say so in a few rate-limited lines (async-nats alone
// would log an ERROR line per refused attempt, several a second), never print either token, and
// be ready again as soon as the server accepts it. async-nats retries refusals forever, so the
// subscription does not end here; if it ever does, `run` fails liveness and exits non-zero.
#[tokio::test]
async fn a_server_back_with_other_credentials_leaves_the_consumer_up_unready_and_quiet() {
    let token = format!("tok{}", uuid::Uuid::new_v4().simple());
    let mut server = NatsServer::start_with(&["--auth", &token]);
    let subject = unique_subject("rotated");
    let url = format!("nats://{token}@127.0.0.1:{}", server.port);
    let mut consumer = Consumer::start(&url, &subject, &[("STATS_INTERVAL", "60s")]);
    consumer.wait_readiness(200, WAIT).await;
    server.kill();
    let other = format!("other{}", uuid::Uuid::new_v4().simple());
    server.set_args(&["--auth", &other]);
    server.restart();
    consumer.wait_readiness(503, WAIT).await;
    const CLIENT_ERRORS: &str = "data_manager_nats_errors_total{type=\"client\"}";
    eventually(WAIT, || async {
        (consumer.metric(CLIENT_ERRORS) >= 15.0).then_some(())
    })
    .await;
    assert!(consumer.try_wait().is_none(), "still running");
    let refused = consumer.metric(CLIENT_ERRORS);
    let logs = consumer.logs();
    let lines = logs.lines().count();
    assert!(
        lines <= 6,
        "{refused} refusals must not make a line each: {lines} lines\n{logs}"
    );
    server.kill();
    server.set_args(&["--auth", &token]);
    server.restart();
    consumer.wait_readiness(200, WAIT).await;
    let status = consumer.terminate(WAIT);
    let logs = consumer.logs();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(!logs.contains(&token) && !logs.contains(&other), "{logs}");
}
