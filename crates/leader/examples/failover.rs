//! Measures leader failover after a crash and hand-over after a graceful release.
//!
//! Three electors per trial, the short test timings (LeaseDuration 1 s, RenewDeadline 600 ms,
//! RetryPeriod 200 ms, API timeout 200 ms), real time, a real `kube::Client`, and the
//! in-process fake API server of the integration tests. Times are taken from the fake's commit
//! log, so they are what the API server saw.
//!
//! - **failover**: from aborting the leader (no release) to the takeover write committing,
//!   as a ratio to LeaseDuration + RetryPeriod;
//! - **hand-over**: from the release write committing to the takeover write committing,
//!   as a ratio to RetryPeriod.
//!
//! Run: `cargo run -p leader --example failover` (optionally `-- <trials>`, default 25).
//! The figures are bound by protocol timers, not CPU, so the dev profile gives the same
//! numbers as `--release` without a release build of kube.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use tokio::time::Instant;

use leader::testing::FakeApi;
use support::{Candidate, LD, RP, SETTLE, Timeline, leader_among, lease_name};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(25)
        .max(20);
    let mut failovers = Vec::with_capacity(trials);
    let mut handovers = Vec::with_capacity(trials);
    let started = Instant::now();
    for trial in 0..trials {
        failovers.push(crash_trial().await);
        handovers.push(graceful_trial().await);
        eprintln!(
            "trial {:>2}: failover {:>5} ms, hand-over {:>4} ms",
            trial + 1,
            failovers[trial].as_millis(),
            handovers[trial].as_millis()
        );
    }
    let wall = started.elapsed();
    println!(
        "Leader election, {trials} trials each, LD {LD:?} / RD 600ms / RP {RP:?} (total {:.0} s)\n",
        wall.as_secs_f64()
    );
    println!("| Measure | Baseline | Median | Max | Median / baseline | Max / baseline |");
    println!("|---|---|---|---|---|---|");
    row("Failover after crash", LD + RP, &mut failovers);
    row("Hand-over after graceful release", RP, &mut handovers);
}

fn row(name: &str, baseline: Duration, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "| {name} | {} ms | {} ms | {} ms | {:.2} | {:.2} |",
        baseline.as_millis(),
        median.as_millis(),
        max.as_millis(),
        ratio(median),
        ratio(max)
    );
}

/// A fresh Lease with three electors, led for a random part of a renew cycle.
async fn three_with_leader(fake: &FakeApi, timeline: &Timeline) -> (Vec<Candidate>, usize) {
    let lease = lease_name("bench");
    let candidates: Vec<Candidate> = ["a", "b", "c"]
        .into_iter()
        .map(|n| Candidate::start(fake, timeline, &lease, n))
        .collect();
    let i = leader_among(&candidates, SETTLE).await;
    // Let the followers observe a few renews, then act at a random phase of the renew cycle.
    let phase = RP.mul_f64(rand::random_range(0.0..1.0));
    tokio::time::sleep(RP * 3 + phase).await;
    (candidates, i)
}

fn first_commit_by(fake: &FakeApi, identity: &str, after: Instant) -> Instant {
    fake.log()
        .into_iter()
        .find(|e| {
            e.at >= after
                && e.committed
                    .as_ref()
                    .is_some_and(|s| s.holder_identity.as_deref() == Some(identity))
        })
        .map(|e| e.at)
        .expect("takeover committed")
}

async fn crash_trial() -> Duration {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let (mut candidates, i) = three_with_leader(&fake, &timeline).await;
    let old = candidates.swap_remove(i);
    let crashed_at = Instant::now();
    old.crash();
    let j = leader_among(&candidates, SETTLE).await;
    let takeover = first_commit_by(&fake, &candidates[j].identity, crashed_at);
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
    takeover - crashed_at
}

async fn graceful_trial() -> Duration {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let (mut candidates, i) = three_with_leader(&fake, &timeline).await;
    let old = candidates.swap_remove(i);
    let old_name = old.name.clone();
    let before = Instant::now();
    old.graceful().await.expect("release succeeds");
    let released = fake
        .log()
        .into_iter()
        .find(|e| {
            e.at >= before
                && e.elector.as_deref() == Some(old_name.as_str())
                && e.committed
                    .as_ref()
                    .is_some_and(|s| s.holder_identity.as_deref() == Some(""))
        })
        .map(|e| e.at)
        .expect("release committed");
    let j = leader_among(&candidates, SETTLE).await;
    let takeover = first_commit_by(&fake, &candidates[j].identity, released);
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
    takeover - released
}
