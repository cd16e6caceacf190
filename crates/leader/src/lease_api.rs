//! Lease I/O: GET, POST and PUT on `Api<Lease>`, each under a timeout, with errors classified.
//!
//! No decisions are made here; `state.rs` decides, `elector.rs` drives.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::error::Error;
use crate::metrics;
use crate::state::LeaseRecord;

/// Why one Lease API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer within the per-call timeout; the write may or may not have committed.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// 404: the Lease does not exist.
    #[error("the Lease does not exist (404 NotFound)")]
    NotFound,
    /// 409 `AlreadyExists` on create: someone else created it first.
    #[error("the Lease already exists (409 AlreadyExists)")]
    AlreadyExists,
    /// 409 `Conflict` on update: our `resourceVersion` is stale.
    #[error("the Lease was modified since we read it (409 Conflict)")]
    Conflict,
    /// Any other error status from the API server (or a proxy in front of it).
    #[error("API server answered {code} {reason}: {message}")]
    Status {
        /// HTTP status code.
        code: u16,
        /// The `Status` reason, e.g. `TooManyRequests`.
        reason: String,
        /// The `Status` message.
        message: String,
    },
    /// The request did not get an HTTP answer (connection refused or dropped, TLS, decoding).
    #[error("request failed: {0}")]
    Transport(#[source] kube::Error),
}

impl ApiError {
    /// A short, bounded label for metrics and logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::Status { code: 429, .. } => "throttled",
            Self::Status { code, .. } if *code >= 500 => "server_error",
            Self::Status { .. } => "client_error",
            Self::Transport(_) => "transport",
        }
    }

    /// Whether another writer won: the Lease changed or vanished under us. `leader.md` §12.2:
    /// a PUT on a missing Lease with a `resourceVersion` may answer 404, so 404 counts like 409.
    pub const fn lost_race(&self) -> bool {
        matches!(self, Self::Conflict | Self::NotFound | Self::AlreadyExists)
    }

    /// Classifies a kube error. Checks the HTTP code as well as the reason, because kube-core 5
    /// only matches the reason for known reasons (`leader.md` §7 pitfall 1).
    fn from_kube(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => {
                if status.is_already_exists() {
                    Self::AlreadyExists
                } else if status.is_conflict() || status.code == 409 {
                    Self::Conflict
                } else if status.is_not_found() || status.code == 404 {
                    Self::NotFound
                } else {
                    Self::Status {
                        code: status.code,
                        reason: status.reason.clone(),
                        message: status.message.clone(),
                    }
                }
            }
            other => Self::Transport(other),
        }
    }
}

/// Prepares a kube config for the election's own client (`leader.md` §7): no automatic retries
/// (they resend committed PUTs and block past the renew deadline), and every socket wait bounded
/// by `api_timeout`. Use it for the election only; the application keeps its own client.
///
/// # Errors
/// [`Error::Client`] if kube cannot build a client from the config.
pub fn election_client(
    mut config: kube::Config,
    api_timeout: Duration,
) -> Result<kube::Client, Error> {
    config.default_retry = false;
    config.read_timeout = Some(api_timeout);
    config.write_timeout = Some(api_timeout);
    config.connect_timeout = Some(api_timeout);
    // A pooled connection's idle time must not count against the next request's read timeout.
    config.reset_reader_on_write = true;
    kube::Client::try_from(config).map_err(Error::Client)
}

/// One named Lease, with every call under a caller-given timeout and timed for metrics.
#[derive(Clone)]
pub(crate) struct LeaseApi {
    api: Api<Lease>,
    name: String,
}

impl LeaseApi {
    pub fn new(api: Api<Lease>, name: String) -> Self {
        Self { api, name }
    }

    /// GET; `Ok(None)` if the Lease does not exist.
    pub async fn get(&self, timeout: Duration) -> Result<Option<Lease>, ApiError> {
        match self.timed("get", timeout, self.api.get(&self.name)).await {
            Ok(lease) => Ok(Some(lease)),
            Err(ApiError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// POST a new Lease holding `record`.
    pub async fn create(&self, record: &LeaseRecord, timeout: Duration) -> Result<Lease, ApiError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(to_spec(record)),
        };
        let pp = PostParams::default();
        self.timed("create", timeout, self.api.create(&pp, &lease))
            .await
    }

    /// PUT `record`, conditional on `resource_version`. `meta` is the metadata we last saw, so
    /// labels and annotations others put on the Lease survive our writes.
    pub async fn replace(
        &self,
        meta: &ObjectMeta,
        record: &LeaseRecord,
        resource_version: &str,
        timeout: Duration,
    ) -> Result<Lease, ApiError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: Some(resource_version.to_owned()),
                ..meta.clone()
            },
            spec: Some(to_spec(record)),
        };
        let pp = PostParams::default();
        self.timed(
            "replace",
            timeout,
            self.api.replace(&self.name, &pp, &lease),
        )
        .await
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        timeout: Duration,
        call: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ApiError::from_kube(e)),
            Err(_) => Err(ApiError::Timeout(timeout)),
        };
        metrics::api_call(&self.name, op, started.elapsed().as_secs_f64());
        result
    }
}

/// Splits a Lease into the record the state machine sees, its `resourceVersion` and metadata.
pub(crate) fn split(lease: Lease) -> (LeaseRecord, String, ObjectMeta) {
    let record = lease.spec.map(from_spec).unwrap_or_default();
    let resource_version = lease.metadata.resource_version.clone().unwrap_or_default();
    (record, resource_version, lease.metadata)
}

fn from_spec(spec: LeaseSpec) -> LeaseRecord {
    LeaseRecord {
        holder: spec.holder_identity,
        lease_duration_seconds: spec.lease_duration_seconds,
        acquire_time: spec.acquire_time.map(|t| t.0),
        renew_time: spec.renew_time.map(|t| t.0),
        lease_transitions: spec.lease_transitions,
    }
}

/// `strategy` and `preferredHolder` stay unset: they belong to Coordinated Leader Election,
/// which we do not use (`leader.md` §4).
fn to_spec(record: &LeaseRecord) -> LeaseSpec {
    LeaseSpec {
        holder_identity: record.holder.clone(),
        lease_duration_seconds: record.lease_duration_seconds,
        acquire_time: record.acquire_time.map(MicroTime),
        renew_time: record.renew_time.map(MicroTime),
        lease_transitions: record.lease_transitions,
        preferred_holder: None,
        strategy: None,
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Status::failure("x", reason).with_code(code).boxed())
    }

    #[test]
    fn conflict_and_already_exists_are_told_apart() {
        assert!(matches!(
            ApiError::from_kube(api_error(409, "AlreadyExists")),
            ApiError::AlreadyExists
        ));
        assert!(matches!(
            ApiError::from_kube(api_error(409, "Conflict")),
            ApiError::Conflict
        ));
    }

    #[test]
    fn plain_text_error_bodies_are_classified_by_code() {
        // kube turns a non-Status body into reason "Failed to parse error data" (pitfall 1).
        assert!(matches!(
            ApiError::from_kube(api_error(404, "Failed to parse error data")),
            ApiError::NotFound
        ));
        assert!(matches!(
            ApiError::from_kube(api_error(409, "Failed to parse error data")),
            ApiError::Conflict
        ));
    }

    #[test]
    fn other_statuses_keep_code_and_get_bounded_reasons() {
        let e = ApiError::from_kube(api_error(429, "TooManyRequests"));
        assert_eq!(e.reason(), "throttled");
        assert!(!e.lost_race());
        assert_eq!(
            ApiError::from_kube(api_error(504, "Timeout")).reason(),
            "server_error"
        );
        assert_eq!(
            ApiError::from_kube(api_error(422, "Invalid")).reason(),
            "client_error"
        );
        assert!(ApiError::Conflict.lost_race());
        assert!(ApiError::NotFound.lost_race());
        assert!(!ApiError::Timeout(Duration::from_secs(1)).lost_race());
    }

    #[test]
    fn record_survives_spec_round_trip() {
        let record = LeaseRecord {
            holder: Some("a".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            renew_time: None,
            lease_transitions: Some(3),
        };
        assert_eq!(from_spec(to_spec(&record)), record);
    }
}
