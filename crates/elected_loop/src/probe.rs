//! The readiness probe loop: MySQL and Mongo reachability, the election state, the heartbeat.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime::health::Health;
use store::{KlineSource, MongoSink};
use tokio_util::sync::CancellationToken;

/// The current elector's state channel (replaced when the replica stands for election again).
pub(crate) type ElectionView =
    Arc<Mutex<Option<tokio::sync::watch::Receiver<leader::LeaderState>>>>;

/// Probes MySQL and Mongo for readiness and shows the election state; beats liveness.
pub(crate) async fn probe_loop(
    source: KlineSource,
    sink: MongoSink,
    health: Health,
    election: Option<ElectionView>,
    every: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let (mysql, mongo) = tokio::join!(source.ping(), sink.ping());
        match mysql {
            Ok(()) => health.set("mysql", true, "reachable"),
            Err(e) => health.set("mysql", false, e.to_string()),
        }
        match mongo {
            Ok(()) => health.set("mongodb", true, "reachable"),
            Err(e) => health.set("mongodb", false, e.to_string()),
        }
        if let Some(view) = &election {
            // A follower is ready: it is a hot standby. The state is shown, not gated on, except
            // a misconfigured election, which no replica can recover from on its own.
            let state = view
                .lock()
                .ok()
                .and_then(|rx| rx.as_ref().map(|rx| rx.borrow().clone()))
                .unwrap_or(leader::LeaderState::Unknown);
            let (ok, detail) = match &state {
                leader::LeaderState::Leading { term, .. } => {
                    (true, format!("leading (term {term})"))
                }
                leader::LeaderState::Following { holder } => (
                    true,
                    format!("following {}", holder.as_deref().unwrap_or("nobody")),
                ),
                leader::LeaderState::Unknown => (true, "unknown".to_owned()),
                leader::LeaderState::Misconfigured { problem } => {
                    (false, format!("misconfigured: {problem}"))
                }
            };
            health.set("election", ok, detail);
        }
        health.beat();
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
