//! dm-analytics: leader-elected market analytics over the extractor's klines
//! (formulas: `docs/analytics.md`), with results in MongoDB.
//!
//! # Layout
//! - [`stats`]: the statistics conventions, pandas/numpy semantics to the last bit (pure).
//! - [`candle`]: the calculators' input.
//! - [`options`]: the named options that improve on parity, all off by default.
//! - [`metric`]: metric kinds, document content, skip reasons.
//! - One module per metric (pure): [`volatility`], [`volume`], [`trend`], [`deviation`],
//!   [`seasonality`], [`spread`], [`correlation`], [`regime`].
//! - [`analysis`]: one timeframe's windows and calculators for every symbol (pure).
//! - [`golden`]: the golden Series A and B that fix the numbers.
//! - [`csv`]: the candle files of `dm-analytics compute`; [`compute`]: its JSON output.
//! - [`documents`]: the MongoDB documents and indexes (pure); [`write`](mod@write): writing them fenced.
//! - [`config`]: the command line and environment; [`reads`]: one cycle's reads and analysis;
//!   [`schedule`]: the job `dm-analytics run` hands to the `elected_loop` crate (election,
//!   retries, probes); [`metrics`]: metric names.

pub mod analysis;
pub mod candle;
pub mod compute;
pub mod config;
pub mod correlation;
pub mod csv;
pub mod deviation;
pub mod documents;
pub mod golden;
pub mod metric;
pub mod metrics;
pub mod options;
pub mod reads;
pub mod regime;
pub mod schedule;
pub mod seasonality;
pub mod spread;
pub mod stats;
pub mod trend;
pub mod volatility;
pub mod volume;
pub mod write;

#[cfg(test)]
mod testdata;
