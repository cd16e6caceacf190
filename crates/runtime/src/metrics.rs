//! The Prometheus recorder: installed once per process, drained by a periodic upkeep task.

use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// How often histogram samples are drained into their buckets. Without upkeep the recorder
/// keeps every raw sample and memory grows without bound.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the global recorder and starts its upkeep task, which ends with `shutdown`.
///
/// # Errors
/// When a recorder is already installed in this process.
pub fn install(shutdown: CancellationToken) -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep.run_upkeep(),
                () = shutdown.cancelled() => break,
            }
        }
    });
    Ok(handle)
}
