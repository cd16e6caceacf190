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
    /// 401: the API server does not accept our credentials (an expired or foreign token).
    /// Retrying cannot help until the deployment is fixed.
    #[error("the API server rejected our credentials (401 Unauthorized): {message}")]
    Unauthorized {
        /// The `Status` message.
        message: String,
    },
    /// 403: RBAC does not let us do this (a missing Role or RoleBinding, or a Role that does
    /// not name this Lease). Retrying cannot help until the deployment is fixed.
    #[error("RBAC denied the request (403 Forbidden): {message}")]
    Forbidden {
        /// The `Status` message, naming the user, verb and resource.
        message: String,
    },
    /// 404 for the namespace: the Lease's namespace does not exist (a wrong `POD_NAMESPACE`).
    #[error("the Lease's namespace does not exist (404 NotFound): {message}")]
    NamespaceMissing {
        /// The `Status` message.
        message: String,
    },
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
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden { .. } => "forbidden",
            Self::NamespaceMissing { .. } => "namespace_missing",
            Self::Status { code: 429, .. } => "throttled",
            Self::Status { code, .. } if *code >= 500 => "server_error",
            Self::Status { .. } => "client_error",
            Self::Transport(_) => "transport",
        }
    }

    /// Whether another writer won: the Lease changed or vanished under us. Only the operation
    /// that can lose a race produces these variants: for a create, only `AlreadyExists`.
    pub const fn lost_race(&self) -> bool {
        matches!(self, Self::Conflict | Self::NotFound | Self::AlreadyExists)
    }

    /// Whether the deployment is wrong (credentials, RBAC, namespace): an operator has to act,
    /// so the elector reports it loudly instead of counting it as a lost race or an outage.
    pub const fn is_misconfiguration(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized { .. } | Self::Forbidden { .. } | Self::NamespaceMissing { .. }
        )
    }

    /// The HTTP status the API server answered, if it answered one.
    pub const fn code(&self) -> Option<u16> {
        match self {
            Self::Timeout(_) | Self::Transport(_) => None,
            Self::NotFound | Self::NamespaceMissing { .. } => Some(404),
            Self::AlreadyExists | Self::Conflict => Some(409),
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::Status { code, .. } => Some(*code),
        }
    }

    /// Classifies a kube error from operation `op`. Checks the HTTP code as well as the reason,
    /// because kube-core 5 only matches the reason for known reasons, and a proxy may answer
    /// with a body that is not a `Status` at all.
    fn from_kube(err: kube::Error, op: Op) -> Self {
        let kube::Error::Api(status) = err else {
            return Self::Transport(err);
        };
        let namespace_gone = status
            .details
            .as_ref()
            .is_some_and(|d| d.kind == "namespaces");
        match (status.code, op) {
            (401, _) => Self::Unauthorized {
                message: status.message.clone(),
            },
            (403, _) => Self::Forbidden {
                message: status.message.clone(),
            },
            // A create names no existing object: its 404 can only be the namespace.
            (404, Op::Create) => Self::NamespaceMissing {
                message: status.message.clone(),
            },
            (404, _) if namespace_gone => Self::NamespaceMissing {
                message: status.message.clone(),
            },
            (404, _) => Self::NotFound,
            (409, _) if status.is_already_exists() => Self::AlreadyExists,
            // On create, only AlreadyExists means someone else won.
            (409, Op::Get | Op::Replace) => Self::Conflict,
            _ => Self::Status {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
        }
    }
}

/// The Lease operation a response answers, which decides what an error status means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Get,
    Create,
    Replace,
}

impl Op {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Create => "create",
            Self::Replace => "replace",
        }
    }
}

/// Prepares a kube config for the election's own client: no automatic retries
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
        match self.timed(Op::Get, timeout, self.api.get(&self.name)).await {
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
        self.timed(Op::Create, timeout, self.api.create(&pp, &lease))
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
            Op::Replace,
            timeout,
            self.api.replace(&self.name, &pp, &lease),
        )
        .await
    }

    async fn timed<T>(
        &self,
        op: Op,
        timeout: Duration,
        call: impl Future<Output = kube::Result<T>>,
    ) -> Result<T, ApiError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(ApiError::from_kube(e, op)),
            Err(_) => Err(ApiError::Timeout(timeout)),
        };
        metrics::api_call(&self.name, op.as_str(), started.elapsed().as_secs_f64());
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
/// which we do not use.
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

    fn namespace_not_found() -> kube::Error {
        let mut status =
            Status::failure("namespaces \"nope\" not found", "NotFound").with_code(404);
        status.details = Some(kube::core::response::StatusDetails {
            name: "nope".into(),
            group: String::new(),
            kind: "namespaces".into(),
            uid: String::new(),
            causes: Vec::new(),
            retry_after_seconds: 0,
        });
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn conflict_and_already_exists_are_told_apart() {
        assert!(matches!(
            ApiError::from_kube(api_error(409, "AlreadyExists"), Op::Create),
            ApiError::AlreadyExists
        ));
        assert!(matches!(
            ApiError::from_kube(api_error(409, "Conflict"), Op::Replace),
            ApiError::Conflict
        ));
    }

    #[test]
    fn on_create_only_already_exists_is_a_lost_race() {
        let missing_ns = ApiError::from_kube(api_error(404, "NotFound"), Op::Create);
        assert!(matches!(missing_ns, ApiError::NamespaceMissing { .. }));
        assert!(!missing_ns.lost_race() && missing_ns.is_misconfiguration());
        let other_conflict = ApiError::from_kube(api_error(409, "Conflict"), Op::Create);
        assert!(!other_conflict.lost_race(), "{other_conflict:?}");
        assert_eq!(other_conflict.code(), Some(409));
    }

    #[test]
    fn a_missing_namespace_is_told_from_a_missing_lease_by_the_status_details() {
        let e = ApiError::from_kube(namespace_not_found(), Op::Replace);
        assert!(
            matches!(e, ApiError::NamespaceMissing { ref message } if message.contains("nope"))
        );
        assert_eq!(e.reason(), "namespace_missing");
        assert!(ApiError::from_kube(api_error(404, "NotFound"), Op::Replace).lost_race());
    }

    #[test]
    fn unauthorized_and_forbidden_are_misconfigurations_with_their_message() {
        for op in [Op::Get, Op::Create, Op::Replace] {
            let e = ApiError::from_kube(api_error(403, "Forbidden"), op);
            assert!(matches!(e, ApiError::Forbidden { .. }), "{e:?}");
            assert!(e.is_misconfiguration() && !e.lost_race());
            assert_eq!((e.code(), e.reason()), (Some(403), "forbidden"));
            let e = ApiError::from_kube(api_error(401, "Unauthorized"), op);
            assert_eq!((e.code(), e.reason()), (Some(401), "unauthorized"));
            assert!(e.is_misconfiguration());
        }
        let forbidden = ApiError::Forbidden {
            message: "User \"x\" cannot get resource \"leases\"".into(),
        };
        assert!(forbidden.to_string().contains("403 Forbidden"));
        assert!(forbidden.to_string().contains("cannot get resource"));
    }

    #[test]
    fn plain_text_error_bodies_are_classified_by_code() {
        // kube turns a non-Status body into reason "Failed to parse error data".
        assert!(matches!(
            ApiError::from_kube(api_error(404, "Failed to parse error data"), Op::Get),
            ApiError::NotFound
        ));
        assert!(matches!(
            ApiError::from_kube(api_error(409, "Failed to parse error data"), Op::Replace),
            ApiError::Conflict
        ));
    }

    #[test]
    fn other_statuses_keep_code_and_get_bounded_reasons() {
        let e = ApiError::from_kube(api_error(429, "TooManyRequests"), Op::Replace);
        assert_eq!(e.reason(), "throttled");
        assert!(!e.lost_race() && !e.is_misconfiguration());
        assert_eq!(
            ApiError::from_kube(api_error(504, "Timeout"), Op::Replace).reason(),
            "server_error"
        );
        assert_eq!(
            ApiError::from_kube(api_error(422, "Invalid"), Op::Replace).reason(),
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
