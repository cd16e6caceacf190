//! Shared service plumbing for the data-manager binaries, wired once and tested once.
//!
//! # Layout
//! - [`config`]: clap argument groups every binary flattens in (admin port, logging) and the
//!   `FromStr` value types they use (durations, booleans).
//! - [`redact`]: secret-bearing URLs that can be logged: `user:***@host`.
//! - [`telemetry`]: the tracing subscriber (JSON or text, level from `LOG_LEVEL`).
//! - [`admin`]: the one-port axum server with `/metrics`, `/health/liveness`, `/health/readiness`.
//! - [`health`]: readiness components and the liveness heartbeat behind those routes.
//! - [`metrics`]: the Prometheus recorder, installed once per process, with periodic upkeep.
//! - [`shutdown`]: SIGTERM/SIGINT to a `CancellationToken`; a second signal aborts.
//! - [`throttle`]: rate-limiting for repeated log lines.

pub mod admin;
pub mod config;
pub mod health;
pub mod metrics;
pub mod redact;
pub mod shutdown;
pub mod telemetry;
pub mod throttle;
