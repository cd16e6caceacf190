//! Errors as RFC 9457 problem documents: bad input is a 400 naming the parameter, an unknown
//! dataset a 404, an unreachable or slow MongoDB a 503. Bad input is never a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::model::Problem;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter is malformed or out of range.
    #[error("{parameter}: {reason}")]
    BadParameter {
        /// The parameter.
        parameter: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No result was ever written for this dataset (or metric and symbol).
    #[error("{0}")]
    NotFound(String),
    /// No route matches the path.
    #[error("no route for {0}")]
    NoRoute(String),
    /// MongoDB did not answer in time, or could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// MongoDB refused a query we built: our bug, not the caller's.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A [`ApiError::BadParameter`].
    pub fn bad(parameter: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            parameter: parameter.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable reason (also a metric label).
    pub const fn reason(&self) -> &'static str {
        match self {
            ApiError::BadParameter { .. } => "bad_parameter",
            ApiError::NotFound(_) => "unknown_dataset",
            ApiError::NoRoute(_) => "no_route",
            ApiError::Unavailable(_) => "mongo_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let (title, parameter) = match self {
            ApiError::BadParameter { parameter, .. } => ("Bad parameter", Some(parameter.clone())),
            ApiError::NotFound(_) => ("Not found", None),
            ApiError::NoRoute(_) => ("No such route", None),
            ApiError::Unavailable(_) => ("Results database unavailable", None),
            ApiError::Internal(_) => ("Internal error", None),
        };
        Problem {
            kind: format!("/problems/{}", self.reason().replace('_', "-")),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: runtime::redact::redact_text(&self.to_string()),
            reason: self.reason().to_owned(),
            parameter,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status(), body).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, ApiError::Unavailable(_)) {
            // The probe loop retries every few seconds; clients may too.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameter_is_a_400_problem_naming_the_parameter() {
        let p = ApiError::bad("limit", "must be between 1 and 500").problem();
        assert_eq!(p.status, 400);
        assert_eq!(p.kind, "/problems/bad-parameter");
        assert_eq!(p.parameter.as_deref(), Some("limit"));
        assert_eq!(p.detail, "limit: must be between 1 and 500");
    }

    #[test]
    fn unavailable_is_503_and_its_detail_is_redacted() {
        let e = ApiError::Unavailable("mongodb://u:hunter2@db:27017 unreachable".into());
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let p = e.problem();
        assert!(!p.detail.contains("hunter2"), "{}", p.detail);
        assert_eq!(p.reason, "mongo_unavailable");
        let resp = e.into_response();
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
    }
}
