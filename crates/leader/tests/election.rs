//! Election behaviour against an in-process fake API server, through a real `kube::Client`,
//! with the short timings of `leader.md` §12.3 and real time (§7 pitfall 8).
//!
//! Bounds are protocol bounds plus `SLACK` for a loaded CI box; no test asserts raw speed.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use leader::{ConfigError, ElectionMode, LeaderState};
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use leader::testing::{Entry, FakeApi, Partition};
use support::{
    A, API_TIMEOUT, Candidate, Event, LD, NS, RD, RP, SETTLE, SLACK, Timeline, client, config,
    eventually, leader_among, lease_name,
};

fn is_write(e: &Entry) -> bool {
    e.method == axum::http::Method::PUT || e.method == axum::http::Method::POST
}

fn holder(spec: &LeaseSpec) -> &str {
    spec.holder_identity.as_deref().unwrap_or("")
}

/// Commits in the fake's log whose holder is `identity`.
fn commits_by_holder<'a>(log: &'a [Entry], identity: &str) -> Vec<&'a Entry> {
    log.iter()
        .filter(|e| e.committed.as_ref().is_some_and(|s| holder(s) == identity))
        .collect()
}

/// Server-side P1: every term (`leaseTransitions`) written with a holder belongs to one holder,
/// and terms never go backwards.
fn assert_log_terms_are_monotonic_and_owned(log: &[Entry]) {
    let mut last: Option<(i32, String)> = None;
    for spec in log.iter().filter_map(|e| e.committed.as_ref()) {
        let h = holder(spec);
        if h.is_empty() {
            continue;
        }
        let term = spec.lease_transitions.unwrap_or(0);
        if let Some((last_term, last_holder)) = &last {
            assert!(
                term >= *last_term,
                "term went back from {last_term} to {term}"
            );
            if term == *last_term {
                assert_eq!(h, last_holder, "term {term} written by two holders");
            }
        }
        last = Some((term, h.to_owned()));
    }
}

fn three(fake: &FakeApi, timeline: &Timeline, lease: &str) -> Vec<Candidate> {
    ["a", "b", "c"]
        .into_iter()
        .map(|n| Candidate::start(fake, timeline, lease, n))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_api_speaks_real_lease_semantics_to_kube_client() {
    let fake = FakeApi::start().await;
    let api: Api<Lease> = Api::namespaced(client(&fake, "probe"), NS);
    let pp = PostParams::default();
    let lease = |rv: Option<&str>, holder: &str| Lease {
        metadata: ObjectMeta {
            name: Some("l1".into()),
            resource_version: rv.map(str::to_owned),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            ..LeaseSpec::default()
        }),
    };

    let Err(kube::Error::Api(status)) = api.get("l1").await else {
        panic!("GET of a missing Lease must fail")
    };
    assert!(status.is_not_found() && status.code == 404, "{status:?}");
    assert!(api.get_opt("l1").await.expect("404 maps to None").is_none());

    let created = api.create(&pp, &lease(None, "a")).await.expect("201");
    let rv1 = created.metadata.resource_version.clone().expect("rv");
    let uid = created.metadata.uid.clone().expect("uid");
    assert!(created.metadata.creation_timestamp.is_some());

    let Err(kube::Error::Api(status)) = api.create(&pp, &lease(None, "b")).await else {
        panic!("second create must fail")
    };
    assert!(
        status.is_already_exists() && !status.is_conflict(),
        "{status:?}"
    );
    assert!(status.message.contains("already exists"));

    let Err(kube::Error::Api(status)) = api.replace("l1", &pp, &lease(None, "b")).await else {
        panic!("PUT without resourceVersion must fail")
    };
    assert!(status.is_invalid() && status.code == 422, "{status:?}");

    let Err(kube::Error::Api(status)) = api.replace("l1", &pp, &lease(Some("1"), "b")).await else {
        panic!("stale PUT must fail")
    };
    assert!(status.is_conflict() && status.code == 409, "{status:?}");
    assert!(status.message.contains("the object has been modified"));

    let updated = api
        .replace("l1", &pp, &lease(Some(&rv1), "b"))
        .await
        .expect("200");
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid.as_str()));

    let mut fresh = lease(None, "c");
    fresh.metadata.name = Some("l2".into());
    let created = api
        .replace("l2", &pp, &fresh)
        .await
        .expect("PUT creates a missing Lease");
    assert!(created.metadata.resource_version.is_some());

    api.delete("l2", &DeleteParams::default())
        .await
        .expect("delete");
    let mut gone = lease(Some("5"), "c");
    gone.metadata.name = Some("l2".into());
    let Err(kube::Error::Api(status)) = api.replace("l2", &pp, &gone).await else {
        panic!("PUT with a resourceVersion on a missing Lease must fail")
    };
    assert_eq!(status.code, 404);
}

/// The kubeconfig route a spawned binary takes (`Config::infer()` with `KUBECONFIG`): kube 5
/// accepts a plain-HTTP server from a kubeconfig, and the default namespace comes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_from_the_fake_drives_an_elector_over_plain_http() {
    let fake = FakeApi::start().await;
    let path = std::env::temp_dir().join(format!("{}.kubeconfig", lease_name("leader-test")));
    fake.write_kubeconfig(&path, "ns-from-kubeconfig")
        .expect("write kubeconfig");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).expect("valid YAML");
    let _ = std::fs::remove_file(&path);
    let cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config from the kubeconfig");
    assert_eq!(cfg.cluster_url.to_string(), format!("{}/", fake.url()));
    assert_eq!(cfg.default_namespace, "ns-from-kubeconfig");
    assert_eq!(cfg.proxy_url, None, "run tests without HTTPS_PROXY");

    let lease = lease_name("kubeconfig");
    let mut election = config(&lease, "k");
    election.namespace = None; // from the kubeconfig, as in a binary without POD_NAMESPACE
    let client = leader::election_client(cfg, API_TIMEOUT).expect("client builds");
    let elector = leader::spawn(client, election).expect("valid config");
    eventually(SETTLE, || async {
        elector.state().is_leading().then_some(())
    })
    .await;
    let spec = fake
        .lease("ns-from-kubeconfig", &lease)
        .and_then(|l| l.spec)
        .expect("Lease created in the kubeconfig's namespace");
    assert_eq!(holder(&spec), elector.identity());
    elector.shutdown().await.expect("release");
    let released = fake
        .lease("ns-from-kubeconfig", &lease)
        .and_then(|l| l.spec)
        .expect("Lease kept");
    assert_eq!(holder(&released), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_elector_creates_lease_at_term_zero_and_renews_keep_term_and_acquire_time() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("lone");
    let me = Candidate::start(&fake, &timeline, &lease, "a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    assert_eq!(me.state().term(), Some(0));
    let first = fake.lease(NS, &lease).expect("created").spec.expect("spec");
    assert_eq!(holder(&first), me.identity);
    assert_eq!(first.lease_duration_seconds, Some(1));
    assert_eq!(first.lease_transitions, Some(0));

    // Several renews later: same term and acquireTime, later renewTime.
    let renewed = eventually(SETTLE, || async {
        let spec = fake.lease(NS, &lease)?.spec?;
        (spec.renew_time > first.renew_time).then_some(spec)
    })
    .await;
    assert_eq!(renewed.lease_transitions, Some(0));
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert!(me.handle().is_healthy(Duration::ZERO));
    me.graceful().await.expect("clean shutdown");
    timeline.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_electors_never_lead_at_once_under_random_faults_and_restarts() {
    let seed: u64 = rand::random();
    println!("chaos seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("chaos");
    let mut candidates = three(&fake, &timeline, &lease);
    let mut next_name = 0;
    let started = Instant::now();

    while started.elapsed() < Duration::from_secs(9) {
        let pick = rng.random_range(0..candidates.len());
        let who = candidates[pick].name.clone();
        match rng.random_range(0..8) {
            0 => fake.set_latency(Some(&who), Duration::from_millis(rng.random_range(20..150))),
            1 => fake.throttle(Some(&who), if rng.random_bool(0.5) { 429 } else { 503 }, 1),
            2 => fake.drop_connections(Some(&who), rng.random_range(1..3)),
            3 => fake.commit_then_504(Some(&who), rng.random_range(1..3)),
            4 => {
                let how = [Partition::Hang, Partition::Drop, Partition::Unavailable]
                    [rng.random_range(0..3)];
                fake.partition(&who, how);
            }
            5 | 6 => {
                // Replace the leader (if any), gracefully or by crashing it.
                if let Some(i) = candidates.iter().position(Candidate::is_leading) {
                    let old = candidates.swap_remove(i);
                    if rng.random_bool(0.5) {
                        let _ = old.graceful().await;
                    } else {
                        old.crash();
                    }
                    next_name += 1;
                    candidates.push(Candidate::start(
                        &fake,
                        &timeline,
                        &lease,
                        &format!("n{next_name}"),
                    ));
                }
            }
            _ => {
                fake.clear_faults();
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..500))).await;
        if rng.random_bool(0.3) {
            fake.clear_faults();
        }
    }
    fake.clear_faults();
    leader_among(&candidates, SETTLE).await;
    let intervals = timeline.assert_safe();
    let mut terms: Vec<i64> = intervals.iter().map(|i| i.term).collect();
    terms.dedup();
    assert!(
        terms.len() >= 4,
        "too few leadership changes to mean much: {terms:?}"
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
    assert_log_terms_are_monotonic_and_owned(&fake.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_leads_within_lease_duration_and_two_retries_after_leader_crash() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("crash");
    let mut candidates = three(&fake, &timeline, &lease);
    let i = leader_among(&candidates, SETTLE).await;
    // Let the followers observe a few renews first.
    tokio::time::sleep(RP * 3).await;
    let old = candidates.swap_remove(i);
    let old_identity = old.identity.clone();
    let crashed_at = Instant::now();
    old.crash();

    let j = leader_among(&candidates, SETTLE).await;
    let new_identity = candidates[j].identity.clone();
    let log = fake.log();
    let takeover = commits_by_holder(&log, &new_identity)
        .first()
        .map(|e| e.at)
        .expect("takeover committed");
    // Worst case (leader.md §12.4 P2): LD + 2·A + 2·L after the last renew, which precedes the
    // crash.
    let failover = takeover - crashed_at;
    assert!(failover <= LD + 2 * A + SLACK, "failover took {failover:?}");
    // Safety: the takeover commits no earlier than LD after the old leader's last renew.
    let last_renew = commits_by_holder(&log, &old_identity)
        .last()
        .map(|e| e.at)
        .expect("old leader renewed");
    assert!(
        takeover >= last_renew + LD,
        "took over {:?} after the last renew, before LD",
        takeover - last_renew
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_releases_after_work_stops_and_follower_leads_within_a_retry_period() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("graceful");
    let mut candidates = three(&fake, &timeline, &lease);
    let i = leader_among(&candidates, SETTLE).await;
    tokio::time::sleep(RP * 2).await;
    let old = candidates.swap_remove(i);
    let (old_name, old_identity) = (old.name.clone(), old.identity.clone());
    old.graceful().await.expect("release succeeds");

    let j = leader_among(&candidates, SETTLE).await;
    let log = fake.log();
    let release = log
        .iter()
        .find(|e| {
            e.elector.as_deref() == Some(old_name.as_str())
                && e.committed.as_ref().is_some_and(|s| holder(s).is_empty())
        })
        .expect("release PUT logged");
    let spec = release.committed.as_ref().expect("committed");
    assert_eq!(spec.lease_duration_seconds, Some(1));
    let drained = timeline
        .first(|e| matches!(e, Event::WorkDrained { elector } if *elector == old_name))
        .expect("work drained");
    let work_stopped = timeline
        .first(|e| matches!(e, Event::WorkStopped { elector, .. } if *elector == old_name))
        .expect("work stopped");
    assert!(work_stopped <= drained && drained <= release.at);
    assert!(
        commits_by_holder(&log, &old_identity).last().map(|e| e.at) < Some(release.at),
        "no renew after the release"
    );
    let takeover = commits_by_holder(&log, &candidates[j].identity)
        .first()
        .map(|e| e.at)
        .expect("takeover");
    let handover = takeover - release.at;
    assert!(
        handover <= A + SLACK,
        "handover took {handover:?}, expected about one RP"
    );

    // A follower's shutdown writes nothing.
    let follower = candidates.swap_remove(1 - j);
    assert!(!follower.is_leading());
    let follower_name = follower.name.clone();
    let before = Instant::now();
    follower.graceful().await.expect("nothing to release");
    assert!(
        !fake
            .log()
            .iter()
            .any(|e| e.at >= before && is_write(e) && e.elector.as_deref() == Some(&follower_name)),
        "a non-holder wrote on shutdown"
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
}

async fn partitioned_leader_steps_down_before_anyone_else_acquires(how: Partition) {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("partition");
    let candidates = three(&fake, &timeline, &lease);
    let i = leader_among(&candidates, SETTLE).await;
    tokio::time::sleep(RP * 2).await;
    let (old_name, old_identity) = (candidates[i].name.clone(), candidates[i].identity.clone());
    let term = candidates[i].state().term().expect("leading");
    fake.partition(&old_name, how);

    let j = eventually(SETTLE, || async {
        candidates
            .iter()
            .position(|c| c.name != old_name && c.is_leading())
    })
    .await;
    assert!(
        !candidates[i].is_leading(),
        "partitioned leader still leads"
    );
    let log = fake.log();
    let last_renew = commits_by_holder(&log, &old_identity)
        .last()
        .map(|e| e.at)
        .expect("renewed before the partition");
    let stopped = timeline
        .first(|e| matches!(e, Event::WorkStopped { elector, term: t } if *elector == old_name && *t == term))
        .expect("partitioned leader's work was cancelled");
    assert!(
        stopped <= last_renew + RD + SLACK,
        "stepped down {:?} after its last renew (RD is {RD:?})",
        stopped - last_renew
    );
    let takeover = commits_by_holder(&log, &candidates[j].identity)
        .first()
        .map(|e| e.at)
        .expect("takeover");
    assert!(
        stopped < takeover,
        "work was still running when another elector acquired"
    );
    assert!(takeover >= last_renew + LD);

    fake.heal(&old_name);
    let new_identity = candidates[j].identity.clone();
    eventually(SETTLE, || async {
        matches!(candidates[i].state(), LeaderState::Following { holder: Some(h) } if h == new_identity)
            .then_some(())
    })
    .await;
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_whose_requests_hang_steps_down_before_anyone_else_acquires() {
    partitioned_leader_steps_down_before_anyone_else_acquires(Partition::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_whose_connections_drop_steps_down_before_anyone_else_acquires() {
    partitioned_leader_steps_down_before_anyone_else_acquires(Partition::Drop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_getting_503s_steps_down_before_anyone_else_acquires() {
    partitioned_leader_steps_down_before_anyone_else_acquires(Partition::Unavailable).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_committed_but_answered_504_does_not_lose_the_lease() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("c504");
    let candidates = vec![
        Candidate::start(&fake, &timeline, &lease, "a"),
        Candidate::start(&fake, &timeline, &lease, "b"),
    ];
    let i = leader_among(&candidates, SETTLE).await;
    let leader = &candidates[i];
    let LeaderState::Leading { term, token } = leader.state() else {
        panic!("leading")
    };
    let since = Instant::now();
    // Three ambiguous renews in a row: each one committed, each one answered 504.
    fake.commit_then_504(Some(&leader.name), 3);
    let name = leader.name.clone();
    eventually(SETTLE, || async {
        let log = fake.log();
        let mine: Vec<&Entry> = log
            .iter()
            .filter(|e| e.at >= since && e.elector.as_deref() == Some(&name))
            .collect();
        let timeouts = mine.iter().filter(|e| e.status == 504).count();
        let ok_after = mine
            .iter()
            .skip_while(|e| e.status != 504)
            .any(|e| e.status == 200 && e.method == axum::http::Method::PUT);
        (timeouts == 3 && ok_after).then_some(())
    })
    .await;

    assert!(
        !token.is_cancelled(),
        "the term was ended by an ambiguous write"
    );
    assert_eq!(leader.state().term(), Some(term));
    let spec = fake.lease(NS, &lease).and_then(|l| l.spec).expect("lease");
    assert_eq!(i64::from(spec.lease_transitions.unwrap_or(-1)), term);
    assert_eq!(holder(&spec), leader.identity);
    // Each 504 was followed by a re-GET, never by a blind resend (kube's retry is off).
    let log = fake.log();
    let mine: Vec<&Entry> = log
        .iter()
        .filter(|e| e.at >= since && e.elector.as_deref() == Some(&name))
        .collect();
    for pair in mine.windows(2) {
        if pair[0].status == 504 {
            assert_eq!(pair[1].method, axum::http::Method::GET, "{mine:?}");
            assert_eq!(pair[1].status, 200);
        }
    }
    let other = &candidates[1 - i];
    assert!(!other.is_leading());
    assert!(
        !timeline
            .events()
            .iter()
            .any(|(_, e)| matches!(e, Event::WorkStopped { .. })),
        "work was interrupted"
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brief_throttling_shorter_than_a_retry_period_keeps_the_lease() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("throttle");
    let me = Candidate::start(&fake, &timeline, &lease, "a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    let term = me.state().term();
    let since = Instant::now();
    // Retry-After says 30 s; with kube's retry off nothing waits for it.
    fake.throttle(Some("a"), 429, 30);
    // Lift it right after the first throttled answer: one failed round, well inside RD.
    eventually(SETTLE, || async {
        fake.log()
            .iter()
            .any(|e| e.at >= since && e.status == 429)
            .then_some(())
    })
    .await;
    fake.clear_throttle(Some("a"));
    eventually(SETTLE, || async {
        let log = fake.log();
        let throttled = log.iter().any(|e| e.at >= since && e.status == 429);
        let renewed_after = log
            .iter()
            .filter(|e| e.at >= since)
            .skip_while(|e| e.status != 429)
            .any(|e| e.status == 200 && e.method == axum::http::Method::PUT);
        (throttled && renewed_after).then_some(())
    })
    .await;
    assert!(me.is_leading());
    assert_eq!(me.state().term(), term);
    me.graceful().await.expect("release");
    assert_eq!(timeline.intervals().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_above_renew_deadline_makes_leader_step_down_and_election_resumes_after() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("latency");
    let candidates = vec![
        Candidate::start(&fake, &timeline, &lease, "a"),
        Candidate::start(&fake, &timeline, &lease, "b"),
    ];
    let i = leader_among(&candidates, SETTLE).await;
    let old = candidates[i].name.clone();
    fake.set_latency(None, RD + Duration::from_millis(200));
    let slow_since = Instant::now();
    eventually(SETTLE, || async {
        candidates.iter().all(|c| !c.is_leading()).then_some(())
    })
    .await;
    let stopped = timeline
        .first(|e| matches!(e, Event::WorkStopped { elector, .. } if *elector == old))
        .expect("work cancelled");
    // The last renew that could have succeeded was sent before the latency began.
    assert!(
        stopped <= slow_since + RD + SLACK,
        "stepped down {:?} after the API became slow",
        stopped - slow_since
    );
    // Nobody can lead while every answer outlasts the call timeout.
    tokio::time::sleep(LD + RD).await;
    assert!(candidates.iter().all(|c| !c.is_leading()));
    let healed = Instant::now();
    fake.set_latency(None, Duration::ZERO);
    leader_among(&candidates, SETTLE).await;
    assert!(
        timeline
            .intervals()
            .iter()
            .filter(|iv| iv.start > stopped)
            .all(|iv| iv.start > healed),
        "someone led while the API was slow"
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_lease_ends_the_term_at_the_next_renew_and_is_recreated() {
    let fake = FakeApi::start().await;
    let timeline = Timeline::default();
    let lease = lease_name("deleted");
    let me = Candidate::start(&fake, &timeline, &lease, "a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    let api: Api<Lease> = Api::namespaced(client(&fake, "admin"), NS);
    let deleted_at = Instant::now();
    api.delete(&lease, &DeleteParams::default())
        .await
        .expect("delete");
    let stopped = eventually(SETTLE, || async {
        timeline.first(|e| matches!(e, Event::WorkStopped { .. }))
    })
    .await;
    // Loss is detected by the re-read after the refused renew, not by waiting for RD.
    assert!(
        stopped - deleted_at < RP + API_TIMEOUT + SLACK,
        "took {:?} to notice",
        stopped - deleted_at
    );
    eventually(SETTLE, || async {
        (timeline.intervals().len() == 2 && me.is_leading()).then_some(())
    })
    .await;
    assert_eq!(me.state().term(), Some(0));
    me.graceful().await.expect("release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configs_are_rejected_before_any_request() {
    let fake = FakeApi::start().await;
    let lease = lease_name("invalid");
    let cases: Vec<(leader::ElectionConfig, &str)> = vec![
        (
            config(&lease, "a").with_timings(LD, LD, RP),
            "LEASE_DURATION (1s) must be longer than LEASE_RENEW_DEADLINE (1s)",
        ),
        (
            config(&lease, "a").with_timings(LD, RP, RP),
            "1.2 × LEASE_RETRY_PERIOD",
        ),
        (
            config(&lease, "a").with_timings(LD, RD, Duration::ZERO),
            "LEASE_RETRY_PERIOD must be greater than zero",
        ),
        (
            config(&lease, "a").with_timings(Duration::from_millis(1500), RD, RP),
            "whole number of seconds",
        ),
        (config("Not_A_Name", "a"), "LEASE_NAME"),
    ];
    for (cfg, expected) in cases {
        let err = leader::spawn(client(&fake, "a"), cfg).expect_err("must be rejected");
        assert!(
            matches!(err, leader::Error::Config(_)),
            "{err:?} is not a config error"
        );
        assert!(err.to_string().contains(expected), "{err}");
    }
    let mut cfg = config(&lease, "a");
    cfg.identity = String::new();
    assert!(matches!(
        leader::spawn(client(&fake, "a"), cfg),
        Err(leader::Error::Config(ConfigError::EmptyIdentity))
    ));
    tokio::time::sleep(RP).await;
    assert!(fake.log().is_empty(), "a rejected config made requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_mode_leads_at_once_with_term_zero_without_any_request() {
    let fake = FakeApi::start().await;
    let mut cfg = config(&lease_name("local"), "a");
    cfg.mode = ElectionMode::Disabled;
    let handle = leader::spawn(client(&fake, "a"), cfg).expect("valid");
    let LeaderState::Leading { term, token } = handle.state() else {
        panic!("local mode leads at once")
    };
    assert_eq!(term, 0);
    handle.shutdown().await.expect("stops");
    assert!(token.is_cancelled());
    assert!(fake.log().is_empty());
}
