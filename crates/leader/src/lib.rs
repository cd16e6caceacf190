//! Kubernetes Lease leader election on kube's `Api<Lease>`, with client-go's semantics.
//!
//! Exactly one replica of a scheduler does work at a time: it holds a
//! `coordination.k8s.io/v1` Lease, renews it every RetryPeriod, and stops working (its term's
//! [`CancellationToken`](tokio_util::sync::CancellationToken) is cancelled) when no renew
//! succeeded within RenewDeadline — before any other replica may take over at LeaseDuration.
//! Why this is safe is explained in `docs/leader-election.md`; the crate README covers timings,
//! settings and RBAC.
//!
//! # Layout
//! - [`config`]: [`ElectionConfig`], client-go defaults, validation ([`ConfigError`]).
//! - [`args`]: [`ElectionArgs`], the clap flags/env vars a binary flattens in.
//! - [`identity`]: `POD_NAME` + random suffix.
//! - `state`: the pure decision state machine (observed Lease + `now` → next write).
//! - `lease_api`: GET/POST/PUT with timeouts and error classification; [`election_client`].
//! - `elector`: the task that drives the state machine; [`spawn`], [`start`].
//! - `handle`: what callers hold: [`ElectorHandle`], [`LeaderState`].
//! - `guard`: [`run_while_leading`], to run work only during a term.
//! - [`metrics`]: metric names and `describe()`.
//! - `testing` (feature `testing`, tests only): the fake Lease API server.
//!
//! # Usage
//! ```no_run
//! # async fn demo(args: leader::ElectionArgs, shutdown: tokio_util::sync::CancellationToken)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! let config = args.to_config("data-manager-auditor")?;
//! let elector = leader::start(config).await?;
//! leader::run_while_leading(elector.subscribe(), shutdown, |lead| async move {
//!     // run cycles, stamping results with lead.term, until lead.token is cancelled
//!     lead.token.cancelled().await;
//! })
//! .await;
//! elector.shutdown().await?; // work has stopped: now release the Lease
//! # Ok(()) }
//! ```

pub mod args;
pub mod config;
mod elector;
mod error;
mod guard;
mod handle;
pub mod identity;
mod lease_api;
pub mod metrics;
mod state;
#[cfg(feature = "testing")]
pub mod testing;

pub use args::ElectionArgs;
pub use config::{ConfigError, ElectionConfig, ElectionMode};
pub use elector::{spawn, start};
pub use error::Error;
pub use guard::{Leadership, run_while_leading};
pub use handle::{ElectorHandle, LeaderState, WriteDeadline};
pub use lease_api::{ApiError, election_client};
