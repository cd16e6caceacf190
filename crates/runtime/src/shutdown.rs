//! SIGTERM and SIGINT become a cancellation token; a second signal aborts at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit code after a second signal (128 + SIGINT, as shells report it).
pub const ABORT_EXIT_CODE: i32 = 130;

/// Listens for SIGTERM/SIGINT. The first cancels the returned token (drain); a second one
/// exits the process immediately.
///
/// # Errors
/// When the signal handlers cannot be registered.
pub fn on_signals() -> std::io::Result<CancellationToken> {
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutdown signal received, draining (send again to abort)");
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second shutdown signal, aborting");
        std::process::exit(ABORT_EXIT_CODE);
    });
    Ok(token)
}
