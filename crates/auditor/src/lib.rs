//! dm-auditor: leader-elected data-quality audits of the extractor's klines (`auditor.md`),
//! with results in MongoDB.
//!
//! # Layout
//! - [`finding`]: finding kinds, severities, the finding record and its stable key.
//! - [`candles`]: the row checks of C.5 (pure).
//! - [`gaps`]: the due-slot grid and gap runs of C.3 (pure, streaming).
//! - [`score`]: the `v3` and legacy score formulas (pure).
//! - [`dataset`]: the streaming audit of one dataset over one window (pure).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod candles;
pub mod dataset;
pub mod finding;
pub mod gaps;
pub mod score;
