//! dm-consumer: counts the market-data stream on NATS and exports it as Prometheus metrics.
//!
//! Replicas join one NATS queue group, so each message is counted by exactly one pod and
//! dashboards sum across pods. Nothing is persisted. At INFO the process logs one stats line
//! per interval; rejects and connection trouble are counted and summarised, never logged one
//! per message.
//!
//! # Layout
//! - [`config`]: settings from env and flags.
//! - [`subscriber`]: NATS I/O (connect, reconnect, queue subscription, drain).
//! - [`process`]: the one processing path (parse, count, sample rejects), shared with replay.
//! - [`tally`], [`latency`], [`stats`]: pure counting, histograms and the stats line.
//! - [`symbols`]: the capped set of symbols with their own label (reserved ones first).
//! - [`metrics`]: every exported metric, defined once, and the exporter.
//! - [`replay`]: offline replay of a capture file.

use std::sync::Arc;

use runtime::admin::{self, AdminState};
use runtime::health::Health;
use tokio_util::sync::CancellationToken;

pub mod config;
pub mod latency;
pub mod metrics;
pub mod process;
pub mod replay;
pub mod stats;
pub mod subscriber;
pub mod symbols;
pub mod tally;

pub use config::Config;

/// What can stop the consumer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics recorder could not be installed.
    #[error("installing the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The admin port could not be bound or served.
    #[error("admin server on port {port}: {source}")]
    Admin {
        /// The port.
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The NATS client or subscription could not be created (the text is redacted).
    #[error("NATS: {0}")]
    Nats(String),
    /// The subscription ended without a shutdown: the process must not exit 0.
    #[error("NATS: the subscription ended unexpectedly")]
    SubscriptionEnded,
}

/// Runs the service until `shutdown` is cancelled and the drain is done.
///
/// # Errors
/// Startup failures, and a subscription that ends without a shutdown; once running, other
/// faults are counted, reported in health and retried.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let handle = runtime::metrics::install(shutdown.child_token())?;
    metrics::describe();
    let health = Health::new("dm-consumer", Some(config.liveness_stall_after.0));
    let exporter = metrics::Exporter::new();
    let latency = exporter.latency();
    let state = AdminState {
        health: health.clone(),
        metrics: handle,
        extra: Some(Arc::new(move |out: &mut String| {
            if let Ok(h) = latency.lock() {
                h.render(out);
            }
        })),
        service: "dm-consumer",
    };
    let port = config.admin.metrics_port;
    let listener = admin::bind(&config.admin)
        .await
        .map_err(|source| Error::Admin { port, source })?;
    // The admin server outlives the drain (readiness reports 503 meanwhile) and stops after it.
    let admin_stop = CancellationToken::new();
    let server = tokio::spawn(admin::serve(
        listener,
        admin::router(state),
        admin_stop.clone(),
    ));
    tracing::info!(
        port,
        subject = %config.nats.subject,
        queue_group = %config.nats.queue_group,
        nats = %config.nats.url,
        "dm-consumer started"
    );

    let result = subscriber::run(&config, health, exporter, shutdown).await;
    admin_stop.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(source)) => return Err(Error::Admin { port, source }),
        Err(join) => tracing::error!(error = %join, "admin server task failed"),
    }
    result
}
