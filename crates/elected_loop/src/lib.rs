//! The elected loop: the service both schedulers (dm-auditor, dm-analytics) run. The admin
//! server and health,
//! MySQL/Mongo readiness probes, Lease election (or `LEADER_ELECTION=disabled`), a cycle every
//! interval only while leading with capped jittered backoff after failures, a fenced term that
//! stops writing, throttled failure logs, and drain plus Lease release on shutdown.
//!
//! A binary supplies only what differs: a [`Job`] (what one cycle reads, computes and writes),
//! and a [`Service`] (its name, Lease, enable flag and metric names).
//!
//! # Layout
//! - [`config`]: the cadence checks (the argument groups are `store::config::StoreArgs` and
//!   `runtime::config::ServiceArgs`).
//! - [`mod@backoff`]: the retry delay after failed cycles (pure).
//! - [`metrics`]: cycle outcomes, durations, leader status and last success, by the binary's names.
//! - [`service`]: [`run`], the leader-gated loop, and the [`Job`] trait.
//! - `probe`: the readiness probe loop.

pub mod backoff;
pub mod config;
pub mod metrics;
mod probe;
pub mod service;

pub use backoff::backoff;
pub use metrics::{CycleMetrics, Outcome};
pub use service::{Failure, Job, RunConfig, RunError, Service, Starting, Stores, Term, run};
