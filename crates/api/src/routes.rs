//! The HTTP routes: one handler per endpoint, each checking its parameters, running its bounded
//! query and answering JSON or a problem document. Path and query parameters arrive through
//! `ApiPath` and `ApiQuery`, which answer a malformed one with the problem document itself.
//! The OpenAPI document is generated from the `#[utoipa::path]` attributes here. The handlers
//! are crate-private: only the router calls them.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use metrics_exporter_prometheus::PrometheusHandle;
use runtime::health::{Health, Report};
use serde::de::DeserializeOwned;

use crate::model::{
    AnalyticsResponse, CorrelationMatrix, DatasetDetail, DatasetList, FindingsPage, Problem,
    Timeframe,
};
use crate::params::{
    self, AnalyticsPath, AnalyticsQuery, CorrelationQuery, Cursor, DatasetPath, DatasetsQuery,
    FindingsQuery, HistoryQuery,
};
use crate::problem::ApiError;
use crate::queries::{self, DatasetFilter, FindingFilter};
use crate::read::Reader;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The results database.
    pub reader: Reader,
    /// Readiness and liveness.
    pub health: Health,
    /// The Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
    /// How far back from the newest audit the dataset list looks.
    pub lookback: chrono::Duration,
    /// Seconds between the status page's reloads.
    pub page_refresh: u64,
    /// The OpenAPI document, rendered once.
    pub openapi: Arc<str>,
}

/// The query string deserialized as `T`; a bad one is answered with a problem document naming
/// the parameter when axum's message names one, else `query`.
pub(crate) struct ApiQuery<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(q)) => Ok(ApiQuery(q)),
            Err(e) => Err(query_error(&e)),
        }
    }
}

/// The path parameters deserialized as `T`; bad ones are answered with a problem document
/// naming `path`.
pub(crate) struct ApiPath<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(p)) => Ok(ApiPath(p)),
            Err(e) => Err(ApiError::bad("path", e.body_text())),
        }
    }
}

fn query_error(e: &QueryRejection) -> ApiError {
    let text = e.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    match detail.split_once(": ") {
        Some((name, reason)) if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            ApiError::bad(name, reason)
        }
        _ => ApiError::bad("query", detail),
    }
}

/// The optional `symbol` filter, checked as [`params::symbol`] checks a symbol.
fn symbol_filter(value: Option<String>) -> Result<Option<String>, ApiError> {
    value.map(|v| params::symbol("symbol", &v)).transpose()
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Every dataset's latest health.
#[utoipa::path(
    get, path = "/v1/datasets", tag = "datasets", params(DatasetsQuery),
    responses(
        (status = 200, description = "Every dataset's latest health", body = DatasetList),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "MongoDB unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_datasets(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<DatasetsQuery>,
) -> ApiResult<DatasetList> {
    let filter = DatasetFilter {
        symbol: symbol_filter(q.symbol)?,
        timeframe: q.timeframe,
        status: q.status,
    };
    let (datasets, skipped) = queries::datasets(&s.reader, &filter, s.lookback).await?;
    crate::metrics::skipped(queries::HEALTH, skipped);
    Ok(Json(DatasetList { datasets }))
}

/// One dataset's latest health, open findings and history.
#[utoipa::path(
    get, path = "/v1/datasets/{symbol}/{timeframe}", tag = "datasets",
    params(DatasetPath, HistoryQuery),
    responses(
        (status = 200, description = "The dataset", body = DatasetDetail),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Never audited", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "MongoDB unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_dataset(
    State(s): State<AppState>,
    ApiPath(p): ApiPath<DatasetPath>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<DatasetDetail> {
    let symbol = params::symbol("symbol", &p.symbol)?;
    let range = params::range(q.from, q.to, Utc::now(), params::DEFAULT_RANGE);
    let limit = params::limit(q.limit, params::HISTORY_LIMIT)?;
    Ok(Json(
        queries::dataset(&s.reader, &symbol, p.timeframe, range, limit).await?,
    ))
}

/// Findings, newest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/findings", tag = "findings", params(FindingsQuery),
    responses(
        (status = 200, description = "One page of findings", body = FindingsPage),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "MongoDB unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_findings(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<FindingsQuery>,
) -> ApiResult<FindingsPage> {
    let filter = FindingFilter {
        state: q.state.unwrap_or_default(),
        severity: q.severity,
        kind: q.kind,
        symbol: symbol_filter(q.symbol)?,
        timeframe: q.timeframe,
        since: q.since,
        after: q.cursor.as_deref().map(Cursor::decode).transpose()?,
    };
    let limit = params::limit(q.limit, params::FINDINGS_LIMIT)?;
    Ok(Json(queries::findings(&s.reader, &filter, limit).await?))
}

/// A metric's latest documents per timeframe, or a time range of them.
#[utoipa::path(
    get, path = "/v1/analytics/{metric}/{symbol}", tag = "analytics",
    params(AnalyticsPath, AnalyticsQuery),
    responses(
        (status = 200, description = "The metric's documents", body = AnalyticsResponse),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No result for this symbol", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "MongoDB unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_analytics(
    State(s): State<AppState>,
    ApiPath(p): ApiPath<AnalyticsPath>,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<AnalyticsResponse> {
    let symbol = params::symbol("symbol", &p.symbol)?;
    let range = if q.from.is_some() || q.to.is_some() {
        Some(params::range(
            q.from,
            q.to,
            Utc::now(),
            params::DEFAULT_RANGE,
        ))
    } else {
        None
    };
    let limit = params::limit(q.limit, params::ANALYTICS_LIMIT)?;
    Ok(Json(
        queries::analytics(&s.reader, p.metric, &symbol, q.timeframe, range, limit).await?,
    ))
}

/// The latest correlation matrix of a timeframe.
#[utoipa::path(
    get, path = "/v1/correlation", tag = "analytics", params(CorrelationQuery),
    responses(
        (status = 200, description = "The matrix", body = CorrelationMatrix),
        (status = 400, description = "A bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No matrix written", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "MongoDB unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_correlation(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<CorrelationQuery>,
) -> ApiResult<CorrelationMatrix> {
    let tf = q.timeframe.unwrap_or(Timeframe::H1);
    Ok(Json(queries::correlation(&s.reader, tf).await?))
}

/// The status page.
#[utoipa::path(
    get, path = "/", tag = "page",
    responses(
        (status = 200, description = "The status page", content_type = "text/html"),
        (status = 503, description = "MongoDB unavailable (the page says so)", content_type = "text/html"),
    )
)]
pub(crate) async fn status_page(State(s): State<AppState>) -> Response {
    let now = Utc::now();
    match crate::page::load(&s.reader, s.lookback).await {
        Ok(data) => {
            Html(crate::page::render(&data, now, s.page_refresh).into_string()).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(crate::page::render_error(&e, now, s.page_refresh).into_string()),
        )
            .into_response(),
    }
}

/// The OpenAPI 3.1 document.
pub(crate) async fn openapi(State(s): State<AppState>) -> Response {
    let mut resp = s.openapi.to_string().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Any other path.
pub(crate) async fn no_route(uri: Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::NoRoute(path)
}

fn report(r: Report) -> Response {
    let status = if r.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(r.body)).into_response()
}

/// `/health/liveness`.
pub(crate) async fn liveness(State(s): State<AppState>) -> Response {
    report(s.health.liveness(Instant::now()))
}

/// `/health/readiness`.
pub(crate) async fn readiness(State(s): State<AppState>) -> Response {
    report(s.health.readiness())
}

/// `/metrics`.
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}
