//! The schedulers' data access: the extractor's MySQL klines (read-only) and the MongoDB sink
//! where results are written under leader fencing.
//!
//! # Layout
//! - [`config`]: `StoreArgs` (MySQL, Mongo, symbols, call timeout), flattened into each
//!   scheduler's command line, and the timeframe lists they parse.
//! - [`timeframe`]: the intervals we accept (`5m`, `1h`, …) and their tables (`klines_m5`, …).
//! - [`mysql_url`]: `MYSQL_URI` in the plain or SQLAlchemy form (`mysql+pymysql://…`).
//! - [`kline`]: one stored candle, with exact decimals and UTC instants.
//! - [`source`]: bounded, indexed range scans over `klines_<suffix>` (MySQL 5.x SQL).
//! - [`trades`]: streaming scans of the extractor's `trades` table, undecodable rows counted.
//! - [`mongo_url`]: the database named by `MONGODB_URL`.
//! - [`bson_safe`]: numbers that BSON can hold (no decimals, NaN/±∞ → null), at every depth.
//! - [`batch`]: a cycle's fenced writes cut into a few unordered `update` commands.
//! - [`sink`]: the MongoDB client: indexes, fenced upserts, the fence document.
//! - `transaction`: a round of batched writes committed together with its fence claim.
//! - [`seed`]: a copy of the extractor's database (DDL, inserts) for tests and the local demo.
//! - `testing` (feature `testing`): per-test MariaDB databases, a SecantusDB server, write-command
//!   counting and fresh servers behind a latency proxy.

pub mod batch;
pub mod bson_safe;
pub mod config;
pub mod indexes;
pub mod kline;
pub mod mongo_url;
pub mod mysql_url;
pub mod seed;
pub mod sink;
pub mod source;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeframe;
pub mod trades;
mod transaction;

pub use batch::{Batching, FencedWrite, Outcome};
pub use kline::Kline;
pub use sink::{Batched, Fence, MongoSink, SinkError};
pub use source::{FutureRows, KlineSource, ScannedRow, SourceError, Undecodable};
pub use timeframe::Timeframe;
