//! The election tests' shared setup (`election.rs` on the in-process fake API server,
//! `k8s_election.rs` on a real kube-apiserver): `dm-auditor run` replicas with short election
//! timings, their logs, and the leader stamps of the documents they wrote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mongodb::bson::Document;
use testkit::{free_port, metric};
use tokio::time::Instant;

pub use super::documents;
use super::{Auditor, run_env};

/// The auditor's Lease (the chart's Role names it).
pub const LEASE: &str = "data-manager-auditor";
/// The leader gauge of the `leader` crate, as exposed on `/metrics`.
pub const IS_LEADER: &str = "data_manager_leader_is_leader{lease=\"data-manager-auditor\"}";
/// Short election timings so a failover fits in a test: LeaseDuration (LD) 1 s, RenewDeadline
/// (RD) 600 ms, RetryPeriod (RP) 200 ms.
pub const LD: Duration = Duration::from_secs(1);
/// The longest follower wait, 1.2 × RP.
pub const A: Duration = Duration::from_millis(240);

/// A unique file in the temporary directory, `dm-auditor-<prefix><name>-<uuid>.<ext>`.
pub fn temp_path(prefix: &str, name: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dm-auditor-{prefix}{name}-{}.{ext}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// One `dm-auditor run` replica: its process, admin port, pod name and log file.
pub struct Replica {
    pub pod: &'static str,
    pub port: u16,
    pub log: PathBuf,
    pub process: Auditor,
}

impl Replica {
    /// Starts pod `pod` of namespace `ns`, electing through `kubeconfig`'s server, its log
    /// named with `log_prefix`.
    pub fn start(
        pod: &'static str,
        ns: &str,
        kubeconfig: &Path,
        (mysql, mongo): (&str, &str),
        log_prefix: &str,
    ) -> Replica {
        let port = free_port();
        let log = temp_path(log_prefix, pod, "log");
        let mut env = run_env(mysql, mongo, "2s", port);
        env.extend([
            ("SHUTDOWN_GRACE", "5s".into()),
            // The environment is cleared, so no HTTPS_PROXY reaches kube's kubeconfig loader.
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("POD_NAMESPACE", ns.into()),
            ("POD_NAME", pod.into()),
            ("LEASE_DURATION", "1s".into()),
            ("LEASE_RENEW_DEADLINE", "600ms".into()),
            ("LEASE_RETRY_PERIOD", "200ms".into()),
        ]);
        let process = Auditor::start(&["run"], &env, &log);
        Replica {
            pod,
            port,
            log,
            process,
        }
    }

    /// `/metrics`' value of `series`, read off the runtime's threads (a fake server serves on
    /// them).
    pub async fn metric(&self, series: &'static str) -> Option<f64> {
        let port = self.port;
        tokio::task::spawn_blocking(move || metric(port, series))
            .await
            .ok()
            .flatten()
    }

    /// Whether a Lease holder identity (`<POD_NAME>_<suffix>`) is this replica's.
    pub fn is(&self, identity: &str) -> bool {
        identity
            .strip_prefix(self.pod)
            .is_some_and(|rest| rest.starts_with('_'))
    }

    /// The replica's log under a header naming it, for failure messages.
    pub fn log_text(&self) -> String {
        format!(
            "--- {} ---\n{}",
            self.pod,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// SIGTERM, then the exit status within `within`.
    pub async fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.process.0.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.process.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The replicas' logs, for failure messages.
pub fn logs(replicas: &[&Replica]) -> String {
    replicas.iter().map(|r| r.log_text()).collect()
}

/// The (leader_identity, leader_term) of every document of `coll`.
pub async fn stamps(url: &str, coll: &str) -> Vec<(String, i64)> {
    documents(url, coll)
        .await
        .iter()
        .map(|d| {
            (
                d.get_str("leader_identity").unwrap_or("").to_owned(),
                d.get_i64("leader_term").unwrap_or(-1),
            )
        })
        .collect()
}

/// The sorted `_id`s of `docs`.
pub fn ids(docs: &[Document]) -> Vec<String> {
    let mut ids: Vec<String> = docs
        .iter()
        .map(|d| d.get_str("_id").unwrap_or("").to_owned())
        .collect();
    ids.sort();
    ids
}
