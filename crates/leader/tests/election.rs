//! Election behaviour through a real `kube::Client`, with the short timings of the design
//! (LD 1 s, RD 600 ms, RP 200 ms) and real time.
//!
//! The tests in `on_both_backends!` run twice: against the in-process fake API server (`fake`)
//! and against a real kube-apiserver (`real`, ignored unless `make test-k8s` runs them with the
//! server it started). The others need the fake's fault knobs or request log.
//!
//! Bounds are protocol bounds plus `SLACK` for a loaded CI box; no test asserts raw speed.

mod support;

use std::time::Duration;

use axum::http;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use leader::{ConfigError, ElectionMode, LeaderState};
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use leader::testing::{Entry, Partition};
use support::{
    A, API_TIMEOUT, Candidate, Cluster, Event, LD, RD, RP, SETTLE, SLACK, Timeline, config,
    eventually, leader_among, lease_name,
};

on_both_backends!(
    api_speaks_lease_semantics,
    update_of_a_deleted_lease_fails_its_uid_precondition_or_recreates_it,
    micro_time_needs_exactly_six_fractional_digits,
    a_missing_namespace_is_404_for_create_and_lease_not_found_for_get,
    spec_validation_and_precondition_errors_carry_the_servers_messages,
    tokens_and_rbac_rules_decide_who_may_do_what,
    lone_elector_creates_lease_at_term_zero_and_renews_keep_term_and_acquire_time,
    follower_leads_within_lease_duration_and_two_retries_after_leader_crash,
    graceful_shutdown_releases_after_work_stops_and_follower_leads_within_a_retry_period,
    deleted_lease_ends_the_term_at_the_next_renew_and_is_recreated,
    elector_in_a_missing_namespace_reports_misconfigured_and_recovers_when_it_appears,
    elector_without_a_role_reports_forbidden_instead_of_following,
    elector_leads_its_own_lease_and_reports_forbidden_for_one_its_role_does_not_name,
    release_refused_after_a_foreign_write_re_reads_once_and_releases,
);

/// The error status of a failed kube call, or a panic naming `what`.
fn status_of<T: std::fmt::Debug>(result: kube::Result<T>, what: &str) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("{what}: expected an error status, got {other:?}"),
    }
}

/// The Role rules the chart grants, for `lease`: get/update it by name, create any.
fn lease_rules(lease: &str) -> Vec<PolicyRule> {
    let rule = |verbs: &[&str], names: Option<&str>| PolicyRule {
        api_groups: Some(vec!["coordination.k8s.io".into()]),
        resources: Some(vec!["leases".into()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names: names.map(|n| vec![n.to_owned()]),
        non_resource_urls: None,
    };
    vec![
        rule(&["get", "update"], Some(lease)),
        rule(&["create"], None),
    ]
}

/// Waits until RBAC lets `client` read Lease `name` (the real server applies a new binding
/// asynchronously; the fake at once). A missing Lease (404) counts as allowed.
async fn await_rbac(client: kube::Client, ns: &str, name: &str) {
    let api: Api<Lease> = Api::namespaced(client, ns);
    eventually(SETTLE, || async {
        match api.get_opt(name).await {
            Ok(_) => Some(()),
            Err(_) => None,
        }
    })
    .await;
}

/// Commits whose holder is `identity`, as (when, spec).
fn commits_by_holder<'a>(
    commits: &'a [(Instant, LeaseSpec)],
    identity: &str,
) -> Vec<&'a (Instant, LeaseSpec)> {
    commits
        .iter()
        .filter(|(_, s)| holder(s) == identity)
        .collect()
}

/// How much later than the commit a real server's watch may report it, compared between two
/// commits; zero on the fake, whose log stamps the commit itself.
fn watch_jitter(cluster: &Cluster) -> Duration {
    if cluster.is_real() {
        Duration::from_millis(20)
    } else {
        Duration::ZERO
    }
}

fn holder(spec: &LeaseSpec) -> &str {
    spec.holder_identity.as_deref().unwrap_or("")
}

/// Server-side safety: every term (`leaseTransitions`) written with a holder belongs to one
/// holder, and terms never go backwards.
fn assert_terms_are_monotonic_and_owned(commits: &[(Instant, LeaseSpec)]) {
    let mut last: Option<(i32, String)> = None;
    for (_, spec) in commits {
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

fn three(cluster: &Cluster, timeline: &Timeline, lease: &str) -> Vec<Candidate> {
    ["a", "b", "c"]
        .into_iter()
        .map(|n| Candidate::start(cluster, timeline, lease, n))
        .collect()
}

fn lease_body(name: &str, rv: Option<&str>, holder: &str) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            resource_version: rv.map(str::to_owned),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            ..LeaseSpec::default()
        }),
    }
}

async fn api_speaks_lease_semantics(cluster: &Cluster) {
    let api: Api<Lease> = Api::namespaced(cluster.client("probe"), &cluster.ns);
    let pp = PostParams::default();
    let lease = |rv: Option<&str>, holder: &str| lease_body("l1", rv, holder);

    let status = status_of(api.get("l1").await, "GET of a missing Lease");
    assert!(status.is_not_found() && status.code == 404, "{status:?}");
    assert_eq!(
        status.message,
        "leases.coordination.k8s.io \"l1\" not found"
    );
    assert!(api.get_opt("l1").await.expect("404 maps to None").is_none());

    let created = api.create(&pp, &lease(None, "a")).await.expect("201");
    let rv1 = created.metadata.resource_version.clone().expect("rv");
    let uid = created.metadata.uid.clone().expect("uid");
    assert!(created.metadata.creation_timestamp.is_some());

    let status = status_of(api.create(&pp, &lease(None, "b")).await, "second create");
    assert!(
        status.is_already_exists() && !status.is_conflict(),
        "{status:?}"
    );
    assert_eq!(
        status.message,
        "leases.coordination.k8s.io \"l1\" already exists"
    );

    let status = status_of(
        api.replace("l1", &pp, &lease(None, "b")).await,
        "PUT without resourceVersion",
    );
    assert!(status.is_invalid() && status.code == 422, "{status:?}");

    let status = status_of(
        api.replace("l1", &pp, &lease(Some("1"), "b")).await,
        "stale PUT",
    );
    assert!(status.is_conflict() && status.code == 409, "{status:?}");
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"l1\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let updated = api
        .replace("l1", &pp, &lease(Some(&rv1), "b"))
        .await
        .expect("200");
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid.as_str()));

    let created = api
        .replace("l2", &pp, &lease_body("l2", None, "c"))
        .await
        .expect("PUT creates a missing Lease");
    assert!(created.metadata.resource_version.is_some());
    let deleted = api
        .delete("l2", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(
        deleted.is_right(),
        "a Lease is deleted at once: {deleted:?}"
    );
}

/// A PUT that carries the UID we cached fails its precondition once the Lease is gone (409);
/// without a UID the server ignores the stale `resourceVersion` and re-creates the Lease (201).
async fn update_of_a_deleted_lease_fails_its_uid_precondition_or_recreates_it(cluster: &Cluster) {
    let api: Api<Lease> = Api::namespaced(cluster.client("probe"), &cluster.ns);
    let pp = PostParams::default();
    let created = api
        .create(&pp, &lease_body("gone", None, "a"))
        .await
        .expect("201");
    let (rv, uid) = (
        created.metadata.resource_version.clone().expect("rv"),
        created.metadata.uid.clone().expect("uid"),
    );
    api.delete("gone", &DeleteParams::default())
        .await
        .expect("delete");

    let mut with_uid = lease_body("gone", Some(&rv), "a");
    with_uid.metadata.uid = Some(uid.clone());
    let status = status_of(api.replace("gone", &pp, &with_uid).await, "PUT with UID");
    assert!(status.is_conflict() && status.code == 409, "{status:?}");
    assert!(
        status.message.ends_with(&format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: "
        )),
        "{}",
        status.message
    );
    assert!(api.get_opt("gone").await.expect("GET").is_none());

    let revived = api
        .replace("gone", &pp, &lease_body("gone", Some(&rv), "a"))
        .await
        .expect("PUT without UID re-creates the Lease");
    assert_ne!(revived.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(
        revived.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("a")
    );
}

async fn micro_time_needs_exactly_six_fractional_digits(cluster: &Cluster) {
    let client = cluster.client("probe");
    let post = |body: String| {
        http::Request::post(format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            cluster.ns
        ))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.into_bytes())
        .expect("request")
    };
    let body = |name: &str, time: &str| {
        format!(
            r#"{{"metadata":{{"name":"{name}"}},"spec":{{"holderIdentity":"a","renewTime":"{time}"}}}}"#
        )
    };
    for bad in ["2026-11-28T16:07:50.384Z", "2026-11-28T16:07:50Z"] {
        let status = status_of(
            client.request::<Lease>(post(body("millis", bad))).await,
            bad,
        );
        assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
        assert!(
            status.message.starts_with(&format!(
                "Lease in version \"v1\" cannot be handled as a Lease: v1.Lease.Spec: v1.LeaseSpec.RenewTime: unmarshalerDecoder: parsing time \"{bad}\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse"
            )),
            "{}",
            status.message
        );
    }
    let good = "2026-11-28T16:07:50.384165Z";
    let stored = client
        .request::<Lease>(post(body("micros", good)))
        .await
        .expect("six digits are accepted");
    let renew = stored.spec.and_then(|s| s.renew_time).expect("renewTime");
    assert_eq!(renew.0.to_string(), good);
}

async fn a_missing_namespace_is_404_for_create_and_lease_not_found_for_get(cluster: &Cluster) {
    let missing = format!("missing-{:08x}", rand::random::<u32>());
    let api: Api<Lease> = Api::namespaced(cluster.client("probe"), &missing);
    let pp = PostParams::default();
    let namespace_not_found = |status: &kube::core::Status| {
        assert_eq!(status.code, 404, "{status:?}");
        assert_eq!(
            status.message,
            format!("namespaces \"{missing}\" not found")
        );
        let details = status.details.as_ref().expect("details");
        assert_eq!(
            (details.kind.as_str(), details.name.as_str()),
            ("namespaces", missing.as_str())
        );
    };
    namespace_not_found(&status_of(
        api.create(&pp, &lease_body("l", None, "a")).await,
        "POST",
    ));
    namespace_not_found(&status_of(
        api.replace("l", &pp, &lease_body("l", None, "a")).await,
        "PUT creating",
    ));
    let status = status_of(api.get("l").await, "GET");
    assert_eq!(status.code, 404);
    assert_eq!(status.details.expect("details").kind, "leases");
}

async fn spec_validation_and_precondition_errors_carry_the_servers_messages(cluster: &Cluster) {
    let api: Api<Lease> = Api::namespaced(cluster.client("probe"), &cluster.ns);
    let pp = PostParams::default();
    let mut bad = lease_body("v", None, "a");
    bad.spec = Some(LeaseSpec {
        lease_duration_seconds: Some(0),
        lease_transitions: Some(-1),
        ..LeaseSpec::default()
    });
    let status = status_of(api.create(&pp, &bad).await, "invalid spec");
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "Lease.coordination.k8s.io \"v\" is invalid: [spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must to greater or equal than 0]"
    );
    let causes = status.details.expect("details").causes;
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        ["spec.leaseDurationSeconds", "spec.leaseTransitions"]
    );

    let status = status_of(
        api.create(&pp, &lease_body("v", Some("7"), "a")).await,
        "create with resourceVersion",
    );
    assert_eq!(status.code, 500);
    assert_eq!(
        status.message,
        "resourceVersion should not be set on objects to be created"
    );

    api.create(&pp, &lease_body("v", None, "a"))
        .await
        .expect("201");
    let status = status_of(
        api.replace("v", &pp, &lease_body("v", None, "a")).await,
        "update without resourceVersion",
    );
    assert_eq!(
        status.message,
        "leases.coordination.k8s.io \"v\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    let status = status_of(
        api.replace("v", &pp, &lease_body("w", Some("1"), "a"))
            .await,
        "name mismatch",
    );
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        status.message,
        "the name of the object (w) does not match the name on the URL (v)"
    );
}

async fn tokens_and_rbac_rules_decide_who_may_do_what(cluster: &Cluster) {
    let ns = cluster.ns.as_str();
    let status = status_of(
        Api::<Lease>::namespaced(cluster.client_with_token("not-a-token", "x"), ns)
            .get("mine")
            .await,
        "unknown token",
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (401, "Unauthorized")
    );

    let norole = cluster.norole_token();
    let status = status_of(
        Api::<Lease>::namespaced(cluster.client_with_token(&norole, "x"), ns)
            .get("mine")
            .await,
        "no role",
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "leases.coordination.k8s.io \"mine\" is forbidden: User \"dm-norole\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{ns}\""
        )
    );

    let token = cluster
        .token_with_rules("elector", lease_rules("mine"))
        .await;
    let client = cluster.client_with_token(&token, "x");
    await_rbac(client.clone(), ns, "mine").await;
    let api: Api<Lease> = Api::namespaced(client, ns);
    let pp = PostParams::default();
    let user = format!("system:serviceaccount:{ns}:elector");
    let created = api
        .create(&pp, &lease_body("mine", None, "a"))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone();
    api.replace("mine", &pp, &lease_body("mine", rv.as_deref(), "b"))
        .await
        .expect("update its own Lease");
    // Create cannot be limited by name; everything else on another Lease is denied.
    api.create(&pp, &lease_body("other", None, "a"))
        .await
        .expect("create is not limited by name");
    let status = status_of(api.get("other").await, "get another Lease");
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        format!(
            "leases.coordination.k8s.io \"other\" is forbidden: User \"{user}\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"{ns}\""
        )
    );
    let status = status_of(
        api.delete("mine", &DeleteParams::default()).await,
        "delete its own Lease",
    );
    assert_eq!(status.code, 403);
    assert!(
        status.message.contains("cannot delete resource"),
        "{}",
        status.message
    );
    if cluster.is_real() {
        // The fake serves no list route at all.
        let status = status_of(api.list(&ListParams::default()).await, "list");
        assert_eq!(status.code, 403);
    }
}

async fn lone_elector_creates_lease_at_term_zero_and_renews_keep_term_and_acquire_time(
    cluster: &Cluster,
) {
    let timeline = Timeline::default();
    let lease = lease_name("lone");
    let me = Candidate::start(cluster, &timeline, &lease, "a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    assert_eq!(me.state().term(), Some(0));
    let first = cluster
        .lease(&lease)
        .await
        .expect("created")
        .spec
        .expect("spec");
    assert_eq!(holder(&first), me.identity);
    assert_eq!(first.lease_duration_seconds, Some(1));
    assert_eq!(first.lease_transitions, Some(0));

    // Several renews later: same term and acquireTime, later renewTime.
    let renewed = eventually(SETTLE, || async {
        let spec = cluster.lease(&lease).await?.spec?;
        (spec.renew_time > first.renew_time).then_some(spec)
    })
    .await;
    assert_eq!(renewed.lease_transitions, Some(0));
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert!(me.handle().is_healthy(Duration::ZERO));
    me.graceful().await.expect("clean shutdown");
    timeline.assert_safe();
}

async fn follower_leads_within_lease_duration_and_two_retries_after_leader_crash(
    cluster: &Cluster,
) {
    let timeline = Timeline::default();
    let lease = lease_name("crash");
    let recorder = cluster.record(&lease).await;
    let mut candidates = three(cluster, &timeline, &lease);
    let i = leader_among(&candidates, SETTLE).await;
    // Let the followers observe a few renews first.
    tokio::time::sleep(RP * 3).await;
    let old = candidates.swap_remove(i);
    let old_identity = old.identity.clone();
    let crashed_at = Instant::now();
    old.crash();

    let j = leader_among(&candidates, SETTLE).await;
    let new_identity = candidates[j].identity.clone();
    let commits = eventually(SETTLE, || async {
        let commits = cluster.commits(&recorder);
        (!commits_by_holder(&commits, &new_identity).is_empty()).then_some(commits)
    })
    .await;
    let takeover = commits_by_holder(&commits, &new_identity)[0].0;
    // Worst case: LD + 2 follower waits after the last renew, which precedes the crash.
    let failover = takeover - crashed_at;
    assert!(failover <= LD + 2 * A + SLACK, "failover took {failover:?}");
    // Safety: the takeover commits no earlier than LD after the old leader's last renew.
    let last_renew = commits_by_holder(&commits, &old_identity)
        .last()
        .map(|(at, _)| *at)
        .expect("old leader renewed");
    assert!(
        takeover + watch_jitter(cluster) >= last_renew + LD,
        "took over {:?} after the last renew, before LD",
        takeover - last_renew
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
    assert_terms_are_monotonic_and_owned(&cluster.commits(&recorder));
}

async fn graceful_shutdown_releases_after_work_stops_and_follower_leads_within_a_retry_period(
    cluster: &Cluster,
) {
    let timeline = Timeline::default();
    let lease = lease_name("graceful");
    let recorder = cluster.record(&lease).await;
    let mut candidates = three(cluster, &timeline, &lease);
    let i = leader_among(&candidates, SETTLE).await;
    tokio::time::sleep(RP * 2).await;
    let old = candidates.swap_remove(i);
    let (old_name, old_identity) = (old.name.clone(), old.identity.clone());
    old.graceful().await.expect("release succeeds");

    let j = leader_among(&candidates, SETTLE).await;
    let new_identity = candidates[j].identity.clone();
    let commits = eventually(SETTLE, || async {
        let commits = cluster.commits(&recorder);
        (!commits_by_holder(&commits, &new_identity).is_empty()).then_some(commits)
    })
    .await;
    let (released_at, released) = commits_by_holder(&commits, "")
        .first()
        .map(|(at, spec)| (*at, spec.clone()))
        .expect("release committed");
    assert_eq!(released.lease_duration_seconds, Some(1));
    let drained = timeline
        .first(|e| matches!(e, Event::WorkDrained { elector } if *elector == old_name))
        .expect("work drained");
    let work_stopped = timeline
        .first(|e| matches!(e, Event::WorkStopped { elector, .. } if *elector == old_name))
        .expect("work stopped");
    assert!(work_stopped <= drained && drained <= released_at);
    assert!(
        commits_by_holder(&commits, &old_identity)
            .last()
            .map(|(at, _)| *at)
            < Some(released_at),
        "no renew after the release"
    );
    let takeover = commits_by_holder(&commits, &new_identity)[0].0;
    let handover = takeover - released_at;
    assert!(
        handover <= A + SLACK,
        "handover took {handover:?}, expected about one RP"
    );

    // A follower's shutdown writes nothing: no second release appears.
    let follower = candidates.swap_remove(1 - j);
    assert!(!follower.is_leading());
    follower.graceful().await.expect("nothing to release");
    tokio::time::sleep(RP).await;
    assert_eq!(
        commits_by_holder(&cluster.commits(&recorder), "").len(),
        1,
        "a non-holder wrote on shutdown"
    );
    for c in candidates {
        let _ = c.graceful().await;
    }
    timeline.assert_safe();
}

async fn deleted_lease_ends_the_term_at_the_next_renew_and_is_recreated(cluster: &Cluster) {
    let timeline = Timeline::default();
    let lease = lease_name("deleted");
    let me = Candidate::start(cluster, &timeline, &lease, "a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    let api: Api<Lease> = Api::namespaced(cluster.client("admin"), &cluster.ns);
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

/// The state the candidate publishes once it is `Misconfigured`, with its problem text.
async fn misconfigured(me: &Candidate) -> String {
    eventually(SETTLE, || async {
        match me.state() {
            LeaderState::Misconfigured { problem } => Some(problem),
            _ => None,
        }
    })
    .await
}

async fn elector_in_a_missing_namespace_reports_misconfigured_and_recovers_when_it_appears(
    cluster: &Cluster,
) {
    let timeline = Timeline::default();
    let lease = lease_name("nons");
    let missing = format!("missing-{:08x}", rand::random::<u32>());
    let me = Candidate::start_with(
        cluster.client("a"),
        &timeline,
        config(&missing, &lease, "a"),
        "a",
    );
    let problem = misconfigured(&me).await;
    assert!(
        problem.contains("404") && problem.contains(&format!("namespaces \"{missing}\" not found")),
        "{problem}"
    );
    // Several attempts later it still says so: a failed create is not a lost race.
    tokio::time::sleep(RP * 3).await;
    assert!(
        matches!(me.state(), LeaderState::Misconfigured { .. }),
        "{:?}",
        me.state()
    );

    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(missing.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(cluster.client("admin"))
        .create(&PostParams::default(), &ns)
        .await
        .expect("create the namespace");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    me.graceful().await.expect("release");
    timeline.assert_safe();
}

async fn elector_without_a_role_reports_forbidden_instead_of_following(cluster: &Cluster) {
    let timeline = Timeline::default();
    let lease = lease_name("norole");
    let token = cluster.norole_token();
    let me = Candidate::start_with(
        cluster.client_with_token(&token, "a"),
        &timeline,
        config(&cluster.ns, &lease, "a"),
        "a",
    );
    let problem = misconfigured(&me).await;
    assert!(
        problem.contains("403 Forbidden") && problem.contains("User \"dm-norole\" cannot get"),
        "{problem}"
    );
    me.graceful().await.expect("nothing to release");
    assert!(timeline.intervals().is_empty());
}

async fn elector_leads_its_own_lease_and_reports_forbidden_for_one_its_role_does_not_name(
    cluster: &Cluster,
) {
    let timeline = Timeline::default();
    let own = lease_name("own");
    let token = cluster
        .token_with_rules("scheduler", lease_rules(&own))
        .await;
    await_rbac(
        cluster.client_with_token(&token, "probe"),
        &cluster.ns,
        &own,
    )
    .await;
    let me = Candidate::start_with(
        cluster.client_with_token(&token, "a"),
        &timeline,
        config(&cluster.ns, &own, "a"),
        "a",
    );
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;

    let other = lease_name("other");
    let stray = Candidate::start_with(
        cluster.client_with_token(&token, "b"),
        &timeline,
        config(&cluster.ns, &other, "b"),
        "b",
    );
    let problem = misconfigured(&stray).await;
    assert!(
        problem.contains("403 Forbidden") && problem.contains(&format!("\"{other}\" is forbidden")),
        "{problem}"
    );
    assert!(me.is_leading(), "the other elector is unaffected");
    assert!(cluster.lease(&other).await.is_none(), "nothing was created");
    stray.graceful().await.expect("nothing to release");
    me.graceful().await.expect("release");
    let released = cluster
        .lease(&own)
        .await
        .and_then(|l| l.spec)
        .expect("kept");
    assert_eq!(holder(&released), "");
}

/// Someone else writes the Lease between our last renew and our release (here: an annotation
/// by the admin, as after a renew that committed but whose answer was lost): the release PUT
/// gets 409, re-reads once, and releases the Lease it still holds, keeping the annotation.
async fn release_refused_after_a_foreign_write_re_reads_once_and_releases(cluster: &Cluster) {
    let timeline = Timeline::default();
    let lease = lease_name("release409");
    // A long RetryPeriod leaves time to write between two renews.
    let cfg = config(&cluster.ns, &lease, "a").with_timings(
        Duration::from_secs(6),
        Duration::from_secs(4),
        Duration::from_secs(2),
    );
    let me = Candidate::start_with(cluster.client("a"), &timeline, cfg, "a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    let api: Api<Lease> = Api::namespaced(cluster.client("admin"), &cluster.ns);
    let mut current = api.get(&lease).await.expect("GET");
    current
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("example.com/touched".into(), "yes".into());
    api.replace(&lease, &PostParams::default(), &current)
        .await
        .expect("foreign write");
    me.graceful()
        .await
        .expect("the release succeeds after one re-read");
    let released = cluster.lease(&lease).await.expect("kept");
    let spec = released.spec.expect("spec");
    assert_eq!(holder(&spec), "", "the Lease was released");
    assert_eq!(spec.lease_duration_seconds, Some(1));
    let annotations = released.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("example.com/touched").map(String::as_str),
        Some("yes")
    );
}

/// The kubeconfig route a spawned binary takes (`Config::infer()` with `KUBECONFIG`): kube 5
/// accepts a plain-HTTP server from a kubeconfig, and the default namespace comes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_from_the_fake_drives_an_elector_over_plain_http() {
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
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
    let mut election = config("unused", &lease, "k");
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
async fn three_electors_never_lead_at_once_under_random_faults_and_restarts() {
    let seed: u64 = rand::random();
    println!("chaos seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let timeline = Timeline::default();
    let lease = lease_name("chaos");
    let mut candidates = three(&cluster, &timeline, &lease);
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
                        &cluster,
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
    let commits: Vec<_> = fake
        .log()
        .into_iter()
        .filter_map(|e| e.committed.map(|spec| (e.at, spec)))
        .collect();
    assert_terms_are_monotonic_and_owned(&commits);
}

async fn partitioned_leader_steps_down_before_anyone_else_acquires(how: Partition) {
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let timeline = Timeline::default();
    let lease = lease_name("partition");
    let recorder = cluster.record(&lease).await;
    let candidates = three(&cluster, &timeline, &lease);
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
    let log = cluster.commits(&recorder);
    let last_renew = commits_by_holder(&log, &old_identity)
        .last()
        .map(|(at, _)| *at)
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
        .map(|(at, _)| *at)
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
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let timeline = Timeline::default();
    let lease = lease_name("c504");
    let candidates = vec![
        Candidate::start(&cluster, &timeline, &lease, "a"),
        Candidate::start(&cluster, &timeline, &lease, "b"),
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
    let spec = cluster
        .lease(&lease)
        .await
        .and_then(|l| l.spec)
        .expect("lease");
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
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let timeline = Timeline::default();
    let lease = lease_name("throttle");
    let me = Candidate::start(&cluster, &timeline, &lease, "a");
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
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let timeline = Timeline::default();
    let lease = lease_name("latency");
    let candidates = vec![
        Candidate::start(&cluster, &timeline, &lease, "a"),
        Candidate::start(&cluster, &timeline, &lease, "b"),
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
async fn invalid_configs_are_rejected_before_any_request() {
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let ns = cluster.ns.as_str();
    let lease = lease_name("invalid");
    let cases: Vec<(leader::ElectionConfig, &str)> = vec![
        (
            config(ns, &lease, "a").with_timings(LD, LD, RP),
            "LEASE_DURATION (1s) must be longer than LEASE_RENEW_DEADLINE (1s)",
        ),
        (
            config(ns, &lease, "a").with_timings(LD, RP, RP),
            "1.2 × LEASE_RETRY_PERIOD",
        ),
        (
            config(ns, &lease, "a").with_timings(LD, RD, Duration::ZERO),
            "LEASE_RETRY_PERIOD must be greater than zero",
        ),
        (
            config(ns, &lease, "a").with_timings(Duration::from_millis(1500), RD, RP),
            "whole number of seconds",
        ),
        (config(ns, "Not_A_Name", "a"), "LEASE_NAME"),
    ];
    for (cfg, expected) in cases {
        let err = leader::spawn(cluster.client("a"), cfg).expect_err("must be rejected");
        assert!(
            matches!(err, leader::Error::Config(_)),
            "{err:?} is not a config error"
        );
        assert!(err.to_string().contains(expected), "{err}");
    }
    let mut cfg = config(ns, &lease, "a");
    cfg.identity = String::new();
    assert!(matches!(
        leader::spawn(cluster.client("a"), cfg),
        Err(leader::Error::Config(ConfigError::EmptyIdentity))
    ));
    tokio::time::sleep(RP).await;
    assert!(fake.log().is_empty(), "a rejected config made requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_mode_leads_at_once_with_term_zero_without_any_request() {
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let mut cfg = config(&cluster.ns, &lease_name("local"), "a");
    cfg.mode = ElectionMode::Disabled;
    let handle = leader::spawn(cluster.client("a"), cfg).expect("valid");
    let LeaderState::Leading { term, token } = handle.state() else {
        panic!("local mode leads at once")
    };
    assert_eq!(term, 0);
    handle.shutdown().await.expect("stops");
    assert!(token.is_cancelled());
    assert!(fake.log().is_empty());
}

/// The chart's exact Role, rendered by Helm and bound to a ServiceAccount token on the real
/// server: the elector gets, creates and updates its own Lease; any other Lease or verb is
/// denied (403), and an elector pointed at another Lease reports that clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the real kube-apiserver of `make test-k8s`"]
async fn real_chart_role_lets_the_elector_use_its_own_lease_and_denies_the_rest() {
    let cluster = Cluster::real().await;
    let real = leader::testing::RealApi::from_env();
    println!("kube-apiserver {}", real.version());
    let ns = cluster.ns.as_str();
    let (rbac, token) = real.chart_token(ns).await;
    let own = rbac
        .leases
        .first()
        .cloned()
        .expect("the Role names a Lease");
    assert!(
        rbac.leases.contains(&"data-manager-auditor".to_owned()),
        "{:?}",
        rbac.leases
    );
    await_rbac(cluster.client_with_token(&token, "probe"), ns, &own).await;

    let timeline = Timeline::default();
    let me = Candidate::start_with(
        cluster.client_with_token(&token, "a"),
        &timeline,
        config(ns, &own, "a"),
        "a",
    );
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    // Renews are updates: a few of them go through.
    let first = cluster
        .lease(&own)
        .await
        .and_then(|l| l.spec)
        .expect("created");
    eventually(SETTLE, || async {
        let spec = cluster.lease(&own).await?.spec?;
        (spec.renew_time > first.renew_time).then_some(())
    })
    .await;

    let api: Api<Lease> = Api::namespaced(cluster.client_with_token(&token, "x"), ns);
    let user = format!(
        "system:serviceaccount:{ns}:{}",
        rbac.service_account
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
    );
    assert_every_other_lease_and_verb_is_denied(&api, &own, &user).await;

    let stray = Candidate::start_with(
        cluster.client_with_token(&token, "b"),
        &timeline,
        config(ns, "someone-elses", "b"),
        "b",
    );
    let problem = misconfigured(&stray).await;
    assert!(
        problem.contains("403 Forbidden") && problem.contains(&user),
        "{problem}"
    );
    stray.graceful().await.expect("nothing to release");
    me.graceful().await.expect("release");
    let released = cluster
        .lease(&own)
        .await
        .and_then(|l| l.spec)
        .expect("kept");
    assert_eq!(holder(&released), "");
}

/// With the chart's Role, `user` may not get another Lease, list, delete or patch its own, or
/// update another: each is a 403 naming the user and the verb.
async fn assert_every_other_lease_and_verb_is_denied(api: &Api<Lease>, own: &str, user: &str) {
    let denied = |status: kube::core::Status, verb: &str| {
        assert_eq!(status.code, 403, "{verb}: {status:?}");
        assert!(
            status.message.contains(&format!(
                "User \"{user}\" cannot {verb} resource \"leases\""
            )),
            "{}",
            status.message
        );
    };
    denied(
        status_of(api.get("someone-elses").await, "get other"),
        "get",
    );
    denied(
        status_of(api.list(&ListParams::default()).await, "list"),
        "list",
    );
    denied(
        status_of(
            api.delete(own, &DeleteParams::default()).await,
            "delete own",
        ),
        "delete",
    );
    let patch = kube::api::Patch::Merge(label_patch());
    denied(
        status_of(
            api.patch(own, &kube::api::PatchParams::default(), &patch)
                .await,
            "patch own",
        ),
        "patch",
    );
    let mut current = api.get(own).await.expect("get own");
    current.metadata.name = Some("someone-elses".into());
    current.metadata.resource_version = None;
    let status = status_of(
        api.replace("someone-elses", &PostParams::default(), &current)
            .await,
        "update other",
    );
    denied(status, "update");
}

/// A merge patch that adds a label.
fn label_patch() -> Lease {
    Lease {
        metadata: ObjectMeta {
            labels: Some([("touched".to_owned(), "yes".to_owned())].into()),
            ..ObjectMeta::default()
        },
        spec: None,
    }
}
