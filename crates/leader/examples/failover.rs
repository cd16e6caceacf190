//! Measures leader failover after a crash and hand-over after a graceful release.
//!
//! Three electors per trial, the short test timings (LeaseDuration 1 s, RenewDeadline 600 ms,
//! RetryPeriod 200 ms, API timeout 200 ms), real time, a real `kube::Client`, and either the
//! in-process fake API server of the integration tests or, with `--real`, the real
//! kube-apiserver of `make test-k8s` (run it through `tests/k8s/run.sh bench`). Times are taken
//! from the fake's commit log, or from a watch on the real server, so they are what the API
//! server saw.
//!
//! - **failover**: from aborting the leader (no release) to the takeover write committing,
//!   as a ratio to LeaseDuration + RetryPeriod;
//! - **hand-over**: from the release write committing to the takeover write committing,
//!   as a ratio to RetryPeriod.
//!
//! Run: `cargo run -p leader --example failover` (optionally `-- <trials>`, default 25;
//! `-- --real <trials>` against the real server).
//! The figures are bound by protocol timers, not CPU, so the dev profile gives the same
//! numbers as `--release` without a release build of kube.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use tokio::time::Instant;

use support::{Candidate, Cluster, Commits, LD, RP, SETTLE, Timeline, leader_among, lease_name};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let real = args.iter().any(|a| a == "--real");
    let trials: usize = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(25)
        .max(20);
    let mut failovers = Vec::with_capacity(trials);
    let mut handovers = Vec::with_capacity(trials);
    let started = Instant::now();
    for trial in 0..trials {
        failovers.push(crash_trial(&cluster(real).await).await);
        handovers.push(graceful_trial(&cluster(real).await).await);
        eprintln!(
            "trial {:>2}: failover {:>5} ms, hand-over {:>4} ms",
            trial + 1,
            failovers[trial].as_millis(),
            handovers[trial].as_millis()
        );
    }
    let wall = started.elapsed();
    let backend = if real {
        format!(
            "real kube-apiserver {}",
            leader::testing::RealApi::from_env().version()
        )
    } else {
        "in-process fake API server".to_owned()
    };
    println!(
        "Leader election on the {backend}, {trials} trials each, LD {LD:?} / RD 600ms / RP {RP:?} (total {:.0} s)\n",
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

async fn cluster(real: bool) -> Cluster {
    if real {
        Cluster::real().await
    } else {
        Cluster::fake().await
    }
}

/// A fresh Lease with three electors, led for a random part of a renew cycle, and a recording
/// of its commits.
async fn three_with_leader(
    cluster: &Cluster,
    timeline: &Timeline,
) -> (Vec<Candidate>, usize, Commits) {
    let lease = lease_name("bench");
    let recorder = cluster.record(&lease).await;
    let candidates: Vec<Candidate> = ["a", "b", "c"]
        .into_iter()
        .map(|n| Candidate::start(cluster, timeline, &lease, n))
        .collect();
    let i = leader_among(&candidates, SETTLE).await;
    // Let the followers observe a few renews, then act at a random phase of the renew cycle.
    let phase = RP.mul_f64(rand::random_range(0.0..1.0));
    tokio::time::sleep(RP * 3 + phase).await;
    (candidates, i, recorder)
}

/// When the first commit with `holder` after `after` was seen (polled: a watch may lag).
async fn first_commit_by(
    cluster: &Cluster,
    recorder: &Commits,
    holder: &str,
    after: Instant,
) -> Instant {
    support::eventually(SETTLE, || async {
        cluster
            .commits(recorder)
            .into_iter()
            .find(|(at, spec)| *at >= after && spec.holder_identity.as_deref() == Some(holder))
            .map(|(at, _)| at)
    })
    .await
}

async fn crash_trial(cluster: &Cluster) -> Duration {
    let timeline = Timeline::default();
    let (mut candidates, i, recorder) = three_with_leader(cluster, &timeline).await;
    let old = candidates.swap_remove(i);
    let crashed_at = Instant::now();
    old.crash();
    let j = leader_among(&candidates, SETTLE).await;
    let takeover = first_commit_by(cluster, &recorder, &candidates[j].identity, crashed_at).await;
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
    takeover - crashed_at
}

async fn graceful_trial(cluster: &Cluster) -> Duration {
    let timeline = Timeline::default();
    let (mut candidates, i, recorder) = three_with_leader(cluster, &timeline).await;
    let old = candidates.swap_remove(i);
    let before = Instant::now();
    old.graceful().await.expect("release succeeds");
    let released = first_commit_by(cluster, &recorder, "", before).await;
    let j = leader_among(&candidates, SETTLE).await;
    let takeover = first_commit_by(cluster, &recorder, &candidates[j].identity, released).await;
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
    takeover - released
}
