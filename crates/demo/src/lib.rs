//! dm-demo: the whole pipeline on one machine, with no cluster (issue 7).
//!
//! # Layout
//! - [`market`]: a seeded, pure generator of realistic klines with injected faults.
//! - [`seeding`]: a demo MySQL database with the extractor's schema, filled from [`market`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod market;
pub mod seeding;
