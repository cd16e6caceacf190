//! The HTTP routes: one handler per endpoint, each parsing its parameters, running its bounded
//! query and answering JSON or a problem document. The OpenAPI document is generated from the
//! `#[utoipa::path]` attributes here. The handlers are crate-private: only the router calls them.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use metrics_exporter_prometheus::PrometheusHandle;
use runtime::health::{Health, Report};

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

fn path_error(e: &PathRejection) -> ApiError {
    ApiError::bad("path", e.body_text())
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
    q: Result<Query<DatasetsQuery>, QueryRejection>,
) -> ApiResult<DatasetList> {
    let Query(q) = q.map_err(|e| query_error(&e))?;
    let filter = DatasetFilter {
        symbol: q.symbol.map(|v| params::symbol("symbol", &v)).transpose()?,
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
    p: Result<Path<DatasetPath>, PathRejection>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<DatasetDetail> {
    let Path(p) = p.map_err(|e| path_error(&e))?;
    let Query(q) = q.map_err(|e| query_error(&e))?;
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
    q: Result<Query<FindingsQuery>, QueryRejection>,
) -> ApiResult<FindingsPage> {
    let Query(q) = q.map_err(|e| query_error(&e))?;
    let filter = FindingFilter {
        state: q.state.unwrap_or_default(),
        severity: q.severity,
        kind: q.kind,
        symbol: q.symbol.map(|v| params::symbol("symbol", &v)).transpose()?,
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
    p: Result<Path<AnalyticsPath>, PathRejection>,
    q: Result<Query<AnalyticsQuery>, QueryRejection>,
) -> ApiResult<AnalyticsResponse> {
    let Path(p) = p.map_err(|e| path_error(&e))?;
    let Query(q) = q.map_err(|e| query_error(&e))?;
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
    q: Result<Query<CorrelationQuery>, QueryRejection>,
) -> ApiResult<CorrelationMatrix> {
    let Query(q) = q.map_err(|e| query_error(&e))?;
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
