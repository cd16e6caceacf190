//! The election's metrics, read back from a capturing recorder while a real elector runs
//! against the fake API server. Its own test binary, because the recorder is process-global.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

use leader::LeaderState;
use leader::testing::Partition;
use support::{Candidate, Cluster, SETTLE, Timeline, config, eventually, lease_name};

/// Values by `name{label=value,…}` (labels sorted); histograms store their sample count.
#[derive(Default)]
struct Values(Mutex<HashMap<String, f64>>);

impl Values {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = render(
            name,
            labels.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .copied()
            .unwrap_or(0.0)
    }

    fn update(&self, key: &str, f: impl FnOnce(f64) -> f64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = map.entry(key.to_owned()).or_insert(0.0);
        *slot = f(*slot);
    }
}

fn render(name: &str, labels: impl Iterator<Item = (String, String)>) -> String {
    let mut labels: Vec<String> = labels.map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

struct Handle {
    key: String,
    values: Arc<Values>,
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.values.update(&self.key, |v| v + value as f64);
    }
    fn absolute(&self, value: u64) {
        self.values.update(&self.key, |v| v.max(value as f64));
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.values.update(&self.key, |v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.values.update(&self.key, |v| v - value);
    }
    fn set(&self, value: f64) {
        self.values.update(&self.key, |_| value);
    }
}

impl HistogramFn for Handle {
    fn record(&self, _value: f64) {
        self.values.update(&self.key, |v| v + 1.0);
    }
}

struct Capture(Arc<Values>);

impl Capture {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()));
        Arc::new(Handle {
            key: render(key.name(), labels),
            values: self.0.clone(),
        })
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

fn values() -> Arc<Values> {
    static VALUES: OnceLock<Arc<Values>> = OnceLock::new();
    VALUES
        .get_or_init(|| {
            let values = Arc::new(Values::default());
            metrics::set_global_recorder(Capture(values.clone()))
                .expect("first and only recorder in this test binary");
            leader::metrics::describe();
            values
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_gauge_transitions_and_renew_failures_are_counted_per_lease() {
    use leader::metrics::{API_SECONDS, IS_LEADER, RENEW_FAILURES, TRANSITIONS};
    let values = values();
    let cluster = Cluster::fake().await;
    let fake = cluster.fake_api();
    let timeline = Timeline::default();
    let lease = lease_name("metrics");
    let l = lease.as_str();
    let me = Candidate::start(&cluster, &timeline, l, "a");

    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    assert_eq!(values.get(IS_LEADER, &[("lease", l)]), 1.0);
    assert_eq!(
        values.get(TRANSITIONS, &[("lease", l), ("event", "acquired")]),
        1.0
    );

    fake.partition("a", Partition::Unavailable);
    eventually(SETTLE, || async { (!me.is_leading()).then_some(()) }).await;
    assert_eq!(values.get(IS_LEADER, &[("lease", l)]), 0.0);
    assert_eq!(
        values.get(TRANSITIONS, &[("lease", l), ("event", "lost")]),
        1.0
    );
    assert!(values.get(RENEW_FAILURES, &[("lease", l), ("reason", "server_error")]) >= 1.0);

    fake.heal("a");
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    assert_eq!(
        values.get(TRANSITIONS, &[("lease", l), ("event", "acquired")]),
        2.0
    );
    me.graceful().await.expect("release");
    assert_eq!(values.get(IS_LEADER, &[("lease", l)]), 0.0);
    assert_eq!(
        values.get(TRANSITIONS, &[("lease", l), ("event", "released")]),
        1.0
    );
    assert!(values.get(API_SECONDS, &[("lease", l), ("op", "replace")]) >= 3.0);
    assert!(values.get(API_SECONDS, &[("lease", l), ("op", "get")]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_sets_the_misconfigured_gauge_until_fixed_and_is_counted() {
    use leader::metrics::{CONFIG_ERRORS, MISCONFIGURED};
    let values = values();
    let cluster = Cluster::fake().await;
    let timeline = Timeline::default();
    let lease = lease_name("misconfigured");
    let l = lease.as_str();
    let missing = format!("missing-{:08x}", rand::random::<u32>());
    let me = Candidate::start_with(
        cluster.client("a"),
        &timeline,
        config(&missing, l, "a"),
        "a",
    );
    eventually(SETTLE, || async {
        matches!(me.state(), LeaderState::Misconfigured { .. }).then_some(())
    })
    .await;
    assert_eq!(values.get(MISCONFIGURED, &[("lease", l)]), 1.0);
    assert!(
        values.get(
            CONFIG_ERRORS,
            &[("lease", l), ("reason", "namespace_missing")]
        ) >= 1.0
    );

    cluster.fake_api().create_namespace(&missing);
    eventually(SETTLE, || async { me.is_leading().then_some(()) }).await;
    assert_eq!(values.get(MISCONFIGURED, &[("lease", l)]), 0.0);
    me.graceful().await.expect("release");
}
