//! The server: one router for the API, the page, the OpenAPI document, `/metrics` and
//! `/health/*`; a Mongo probe loop behind readiness; a stats line a minute; drain on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use runtime::health::Health;
use store::MongoSink;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::read::Reader;
use crate::routes::{self, AppState};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// MONGODB_URL does not parse.
    #[error(transparent)]
    Mongo(#[from] store::SinkError),
    /// The port cannot be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The metrics recorder is already installed.
    #[error("installing the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The server failed.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// The router, for `state`: build it once; tests drive it over a real socket.
pub fn router(state: AppState, max_concurrency: usize) -> Router {
    Router::new()
        .route("/", get(routes::status_page))
        .route("/openapi.json", get(routes::openapi))
        .route("/v1/datasets", get(routes::list_datasets))
        .route(
            "/v1/datasets/{symbol}/{timeframe}",
            get(routes::get_dataset),
        )
        .route("/v1/findings", get(routes::list_findings))
        .route(
            "/v1/analytics/{metric}/{symbol}",
            get(routes::get_analytics),
        )
        .route("/v1/correlation", get(routes::get_correlation))
        .route("/metrics", get(routes::metrics))
        .route("/health/liveness", get(routes::liveness))
        .route("/health/readiness", get(routes::readiness))
        .fallback(routes::no_route)
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            max_concurrency,
        ))
        .with_state(state)
}

/// Pings Mongo every `every`: readiness follows the answer, liveness the loop's beat.
async fn probe_loop(
    reader: Reader,
    sink: MongoSink,
    health: Health,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut was_ok = None;
    let mut indexes_tried = false;
    loop {
        let result = reader.ping().await;
        let ok = result.is_ok();
        if ok && !indexes_tried {
            // The schedulers create these; a read-only user may not, which is fine.
            indexes_tried = true;
            if let Err(e) = store::indexes::ensure_api_indexes(&sink).await {
                warn!(error = %runtime::redact::redact_text(&e.to_string()), "could not create the API's indexes (the schedulers create them too)");
            }
        }
        match &result {
            Ok(()) => health.set("mongodb", true, "ok"),
            Err(e) => health.set("mongodb", false, e),
        }
        if was_ok != Some(ok) {
            match &result {
                Ok(()) => info!("mongodb reachable"),
                Err(e) => warn!(error = %e, "mongodb unreachable; answering 503 until it is back"),
            }
            was_ok = Some(ok);
        }
        health.beat();
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn stats_loop(every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => info!("{}", crate::metrics::STATS.take_line(every)),
            () = shutdown.cancelled() => return,
        }
    }
}

/// Binds `config`'s address and serves until `shutdown`; in-flight requests then finish
/// within the drain limit.
///
/// # Errors
/// [`RunError`] for startup failures; once serving, Mongo faults are 503s, never fatal.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let addr = SocketAddr::new(config.host, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let handle = runtime::metrics::install(shutdown.clone())?;
    crate::metrics::describe();
    serve(config, listener, handle, shutdown).await
}

/// Serves on `listener` (tests bind their own).
///
/// # Errors
/// As [`run`].
pub async fn serve(
    config: Config,
    listener: TcpListener,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let sink =
        MongoSink::connect(config.mongodb_url.expose(), "dm-api", config.db_timeout.0).await?;
    let probe_every = config.service.probe_interval.0;
    let health = Health::new("dm-api", Some(probe_every * 6 + Duration::from_secs(30)));
    let reader = Reader::new(sink.clone(), config.query_timeout.0);
    info!(
        mongodb = %config.mongodb_url,
        database = sink.database_name(),
        addr = %listener.local_addr().map_err(RunError::Serve)?,
        "dm-api starting"
    );
    let state = AppState {
        reader: reader.clone(),
        health: health.clone(),
        metrics,
        lookback: chrono::Duration::from_std(config.lookback.0)
            .unwrap_or(chrono::Duration::minutes(15)),
        page_refresh: config.page_refresh.0.as_secs(),
        openapi: Arc::from(crate::openapi::json()),
    };
    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(probe_loop(
        reader,
        sink.clone(),
        health.clone(),
        probe_every,
        shutdown.clone(),
    ));
    tasks.spawn(stats_loop(config.stats_interval.0, shutdown.clone()));
    tasks.close();
    let drain = shutdown.clone();
    let served = axum::serve(listener, router(state, config.max_concurrency))
        .with_graceful_shutdown(async move {
            drain.cancelled().await;
            health.begin_shutdown();
        });
    let grace = config.service.shutdown_grace.0;
    let result = tokio::select! {
        r = served => r.map_err(RunError::Serve),
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            warn!("drain limit reached; dropping the requests still running");
            Ok(())
        }
    };
    tasks.wait().await;
    sink.shutdown().await;
    info!("dm-api stopped");
    result
}
