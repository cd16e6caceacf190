//! The admin HTTP server: `/metrics`, `/health/liveness` and `/health/readiness` on one port.
//!
//! Probe requests are never logged (they would be a line every few seconds per pod).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::AdminArgs;
use crate::health::{Health, Report};

/// Appends extra Prometheus text to a scrape (for series the `metrics` facade cannot express,
/// such as histograms aggregated off the hot path).
pub type ExtraMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

/// What the admin routes serve.
#[derive(Clone)]
pub struct AdminState {
    /// Health state.
    pub health: Health,
    /// The installed Prometheus recorder's handle.
    pub metrics: PrometheusHandle,
    /// Extra exposition text appended after the recorder's.
    pub extra: Option<ExtraMetrics>,
    /// Service name and version for `/`.
    pub service: &'static str,
}

/// The admin router. Build it once; test it with `oneshot`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/liveness", get(liveness))
        .route("/health/readiness", get(readiness))
        .route("/", get(root))
        .with_state(state)
}

/// Binds the admin port.
///
/// # Errors
/// When the address cannot be bound (port in use, no permission).
pub async fn bind(args: &AdminArgs) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(args.metrics_host, args.metrics_port)).await
}

/// Serves `router` until `shutdown` is cancelled; in-flight requests then finish.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn metrics(State(state): State<AdminState>) -> Response {
    let mut text = state.metrics.render();
    if let Some(extra) = &state.extra {
        extra(&mut text);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn report(r: Report) -> Response {
    let status = if r.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(r.body)).into_response()
}

async fn liveness(State(state): State<AdminState>) -> Response {
    report(state.health.liveness(Instant::now()))
}

async fn readiness(State(state): State<AdminState>) -> Response {
    report(state.health.readiness())
}

async fn root(State(state): State<AdminState>) -> Response {
    axum::Json(json!({
        "service": state.service,
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": ["/metrics", "/health/liveness", "/health/readiness"],
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use tower::ServiceExt;

    fn state(health: Health) -> AdminState {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || metrics::counter!("t_total").increment(3));
        AdminState {
            health,
            metrics: handle,
            extra: Some(Arc::new(|s: &mut String| s.push_str("extra_series 1\n"))),
            service: "test",
        }
    }

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let resp = app
            .oneshot(
                Request::get(path)
                    .body(Body::empty())
                    .expect("valid request"),
            )
            .await
            .expect("router is infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn readiness_is_503_until_ready_then_200() {
        let health = Health::new("t", None);
        health.set("nats", false, "connecting to nats://u:pw@h:4222");
        let app = router(state(health.clone()));
        let (status, body) = get(app.clone(), "/health/readiness").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body.contains("pw@"), "{body}");
        health.set("nats", true, "connected");
        assert_eq!(get(app, "/health/readiness").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_include_recorder_and_extra_text() {
        let (status, body) = get(router(state(Health::new("t", None))), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("t_total 3"), "{body}");
        assert!(body.contains("extra_series 1"), "{body}");
    }

    #[tokio::test]
    async fn liveness_is_503_after_a_fatal_failure_and_unknown_paths_404() {
        let health = Health::new("t", None);
        let app = router(state(health.clone()));
        assert_eq!(get(app.clone(), "/health/liveness").await.0, StatusCode::OK);
        health.fail_liveness("nats client closed");
        assert_eq!(
            get(app.clone(), "/health/liveness").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(get(app, "/nope").await.0, StatusCode::NOT_FOUND);
    }
}
