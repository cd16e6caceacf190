//! The crate's error type for starting, running and stopping an elector.

use crate::config::ConfigError;
use crate::lease_api::ApiError;

/// Why an elector could not start or stop cleanly. A lost Lease is not an error: it is a state
/// change: losing leadership never ends the process, which follows and may lead again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration broke a rule of
    /// [`ElectionConfig::validate`](crate::ElectionConfig::validate).
    #[error("invalid leader election config: {0}")]
    Config(#[from] ConfigError),
    /// No Kubernetes client config could be found (in-cluster or kubeconfig).
    #[error("loading the Kubernetes client config for leader election: {0}")]
    KubeConfig(#[source] kube::config::InferConfigError),
    /// kube could not build a client from the config.
    #[error("building the leader election's Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The release on shutdown failed; followers take over when the Lease expires instead.
    #[error("releasing Lease {lease}: {source}")]
    Release {
        /// The Lease name.
        lease: String,
        /// Why the PUT failed.
        #[source]
        source: ApiError,
    },
    /// The election task panicked or was aborted.
    #[error("the election task ended abnormally: {0}")]
    Task(#[source] tokio::task::JoinError),
}
