//! dm-api: the data manager's results over HTTP. Stateless (any number of replicas, no
//! election): it only reads the collections dm-auditor and dm-analytics write.
//!
//! # Layout
//! - [`config`]: the command line and environment, validated before anything connects.
//! - [`model`]: response bodies and the closed value sets, as serde and OpenAPI types.
//! - [`params`]: request parameters and their checks (pure), cursors.
//! - [`problem`]: errors as RFC 9457 problem documents.
//! - [`convert`]: stored documents into response types (pure).
//! - [`read`]: bounded MongoDB reads; [`queries`]: what each route reads.
//! - [`routes`]: the handlers; [`openapi`]: the generated OpenAPI 3.1 document.
//! - [`page`]: the HTML status page.
//! - [`metrics`]: metric names, the request middleware and the stats line.
//! - [`server`]: the router, the Mongo probe, serving and drain.

pub mod config;
pub mod convert;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod page;
pub mod params;
pub mod problem;
pub mod queries;
pub mod read;
pub mod routes;
pub mod server;

pub use config::Config;
pub use server::{RunError, run};
