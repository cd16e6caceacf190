//! Honest accounting at the edges of the process's life: messages the NATS client drops while
//! the consumer is frozen are counted exactly, and SIGTERM under load loses nothing.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Consumer, NatsServer, publish, unique_subject};
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
    publish(&server.url(), &subject, bodies(N, 3)).await;
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

// Known defect, kept visible: under CPU contention (a parallel nextest run on 2 busy cores) the
// consumer once exited 0 with 22,326 of 200,000 messages still queued after its drain. Until the
// drain path is fixed this runs on demand only: `cargo nextest run -p consumer --test lifecycle
// --run-ignored all`.
#[tokio::test]
#[ignore = "flaky under load: the drain can exit with messages still queued (open defect)"]
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
    publish(&server.url(), &subject, bodies(N, 8)).await;
    // Published and flushed to the server; the consumer is still working through them.
    let status = consumer.terminate(WAIT);
    let logs = consumer.logs();
    assert_eq!(status.code(), Some(0), "{logs}");
    let final_line = logs
        .lines()
        .find(|l| l.contains("Message processing stats") && l.contains("final"))
        .unwrap_or_else(|| panic!("no final stats line:\n{logs}"));
    let total: u64 = final_line
        .split("total=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .expect("total= on the final line");
    // Interval lines are 60 s apart, so the final line holds the whole run.
    assert_eq!(total, N as u64, "{final_line}");
    assert!(final_line.contains("slow_consumer=0,"), "{final_line}");
}
