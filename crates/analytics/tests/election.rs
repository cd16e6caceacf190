//! Two `dm-analytics run` processes compete for the Lease `data-manager-analytics` on the
//! in-process fake Lease API (`leader::testing`, reached through `KUBECONFIG`), on real
//! MariaDB and Mongo: only the leader computes and writes, under its term.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::DateTime;
use leader::testing::FakeApi;
use mongodb::bson::{Document, doc};
use rust_decimal::Decimal;
use store::Timeframe;
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use testkit::{eventually, free_port, metric};

const NS: &str = "dm-analytics-election-test";
const LEASE: &str = "data-manager-analytics";
const SETTLE: Duration = Duration::from_secs(30);

fn temp(name: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dm-analytics-{name}-{}.{ext}",
        uuid::Uuid::new_v4().simple()
    ))
}

struct Replica {
    pod: &'static str,
    port: u16,
    child: std::process::Child,
}

impl Replica {
    fn start(pod: &'static str, kubeconfig: &Path, mysql: &str, mongo: &str) -> Replica {
        let port = free_port();
        let log = std::fs::File::create(temp(pod, "log")).expect("log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_dm-analytics"))
            .arg("run")
            .env_clear()
            .env("MYSQL_URI", mysql)
            .env("MONGODB_URL", mongo)
            .env("SUPPORTED_PAIRS", "BTCUSDT")
            .env("ANALYTICS_TIMEFRAMES", "1h")
            .env("ANALYTICS_INTERVAL", "1s")
            .env("PROBE_INTERVAL", "200ms")
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", NS)
            .env("POD_NAME", pod)
            .env("LEASE_DURATION", "1s")
            .env("LEASE_RENEW_DEADLINE", "600ms")
            .env("LEASE_RETRY_PERIOD", "200ms")
            .env("METRICS_PORT", port.to_string())
            .env("METRICS_HOST", "127.0.0.1")
            .env("LOG_FORMAT", "text")
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn dm-analytics");
        Replica { pod, port, child }
    }

    fn is(&self, identity: &str) -> bool {
        identity
            .strip_prefix(self.pod)
            .is_some_and(|rest| rest.starts_with('_'))
    }

    async fn metric(&self, series: &'static str) -> Option<f64> {
        let port = self.port;
        tokio::task::spawn_blocking(move || metric(port, series))
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_elect_one_writer() {
    let db = MariaDb::create().await;
    let h1: Timeframe = "1h".parse().expect("1h");
    let hour = chrono::Utc::now().timestamp() / 3600 * 3600;
    let rows: Vec<_> = (0..60)
        .map(|h| {
            let mut k = candle(
                "BTCUSDT",
                h1,
                DateTime::from_timestamp(hour - h * 3600, 0).expect("t"),
            );
            k.close = Decimal::from(100 + (h % 7));
            k
        })
        .collect();
    db.insert(h1, "BTCUSDT", &rows).await;
    let mongo = mongo_url();
    let fake = FakeApi::start().await;
    let kubeconfig = temp("kubeconfig", "yaml");
    fake.write_kubeconfig(&kubeconfig, NS).expect("kubeconfig");
    let a = Replica::start("analytics-a", &kubeconfig, &db.url, &mongo);
    let b = Replica::start("analytics-b", &kubeconfig, &db.url, &mongo);

    let client = mongodb::Client::with_uri_str(&mongo).await.expect("client");
    let vol = client
        .database(&store::mongo_url::database_name(&mongo))
        .collection::<Document>("analytics_volatility");
    let (holder, term) = eventually(SETTLE, || async {
        let spec = fake.lease(NS, LEASE)?.spec?;
        let holder = spec.holder_identity.unwrap_or_default();
        let doc = vol.find_one(doc! {}).await.ok()??;
        (!holder.is_empty())
            .then_some((holder, i64::from(spec.lease_transitions.unwrap_or(0))))
            .filter(|_| doc.get_str("leader_identity").is_ok())
    })
    .await;
    let (leader, follower) = if a.is(&holder) { (&a, &b) } else { (&b, &a) };
    assert!(leader.is(&holder), "holder {holder}");
    let ok = "data_manager_analytics_cycles_total{outcome=\"ok\"}";
    eventually(SETTLE, || async {
        (leader.metric(ok).await? >= 2.0).then_some(())
    })
    .await;
    let follower_ok = eventually(SETTLE, || follower.metric(ok)).await;
    assert_eq!(follower_ok, 0.0, "the follower computes nothing");
    assert_eq!(
        follower
            .metric("data_manager_analytics_leader_status")
            .await,
        Some(0.0)
    );
    assert_eq!(
        leader.metric("data_manager_analytics_leader_status").await,
        Some(1.0)
    );
    let d = vol.find_one(doc! {}).await.expect("query").expect("doc");
    assert_eq!(d.get_str("leader_identity"), Ok(holder.as_str()));
    assert_eq!(d.get_i64("leader_term"), Ok(term));
    assert_eq!(vol.count_documents(doc! {}).await.expect("count"), 1);
    drop(client);
    drop_mongo_database(&mongo).await;
    let _ = std::fs::remove_file(kubeconfig);
}
