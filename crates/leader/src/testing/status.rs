//! The response bodies of the fake API server: objects as JSON and the Kubernetes `Status`
//! error bodies, worded as the real server words them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::rules::GROUP;

/// `body` as JSON with status `code`.
pub(super) fn json_response(code: u16, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// 404 for a Lease that does not exist.
pub(super) fn not_found(name: &str) -> Response {
    let msg = format!("leases.coordination.k8s.io \"{name}\" not found");
    status_response(404, "NotFound", &msg, Some(name), None)
}

/// 400 with `msg` and no details.
pub(super) fn bad_request(msg: &str) -> Response {
    status(400, "BadRequest", msg, None, None)
}

/// A Kubernetes `Status` error body about a Lease, as the real API server sends it.
pub(super) fn status_response(
    code: u16,
    reason: &str,
    message: &str,
    name: Option<&str>,
    retry_after_secs: Option<u32>,
) -> Response {
    let mut details = serde_json::json!({"group": GROUP, "kind": "leases"});
    if let Some(name) = name {
        details["name"] = name.into();
    }
    status(code, reason, message, Some(details), retry_after_secs)
}

/// The `details` of a `Status` about namespace `name`.
pub(super) fn namespace_details(name: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "kind": "namespaces"})
}

/// 404 for a namespace that does not exist.
pub(super) fn namespace_not_found(ns: &str) -> Response {
    let msg = format!("namespaces \"{ns}\" not found");
    status(404, "NotFound", &msg, Some(namespace_details(ns)), None)
}

/// A `Status` error body with any `details` (none for 400 and 401, as on the real server).
pub(super) fn status(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<serde_json::Value>,
    retry_after_secs: Option<u32>,
) -> Response {
    let mut body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code,
    });
    if !reason.is_empty() {
        body["reason"] = reason.into();
    }
    if let Some(mut details) = details {
        if let Some(secs) = retry_after_secs {
            details["retryAfterSeconds"] = secs.into();
        }
        body["details"] = details;
    }
    let mut response = json_response(code, &body);
    if let Some(secs) = retry_after_secs
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
