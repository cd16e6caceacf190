//! dm-auditor: leader-elected data-quality audits of the extractor's klines (rules:
//! `docs/audit-rules.md`), with results in MongoDB.
//!
//! # Layout
//! - [`finding`]: finding kinds, severities, the finding record and its stable key.
//! - [`candles`]: the checks on one stored row (pure).
//! - [`gaps`]: the due-slot grid and gap runs (pure, streaming).
//! - [`score`]: the `v3` and legacy score formulas (pure).
//! - [`dataset`]: the streaming audit of one dataset over one window (pure).
//! - [`config`]: the command line and environment, validated before anything connects.
//! - [`reads`]: one cycle's reads from MySQL into the audit.
//! - [`documents`]: the Mongo documents and indexes (pure); [`write`](mod@write): writing them fenced.
//! - [`output`]: the JSON of `once --json`.
//! - [`once`]: `dm-auditor once`; [`schedule`]: the audit job `dm-auditor run` hands to
//!   the `elected_loop` crate (election, retries, probes).
//! - [`metrics`]: metric names and recording.
//! - [`trades`]: the `trades` table reconciled against the reference klines (its own datasets).

pub mod candles;
pub mod config;
pub mod dataset;
pub mod documents;
pub mod finding;
pub mod gaps;
pub mod metrics;
pub mod once;
pub mod output;
pub mod quality_events;
pub mod reads;
pub mod schedule;
pub mod score;
pub mod trades;
pub mod write;

pub use config::{Cli, Command, Settings};
