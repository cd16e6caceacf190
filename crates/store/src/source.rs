//! The extractor's klines in MySQL, read-only: existence checks and bounded, indexed range scans.
//!
//! Every query is MySQL 5.x SQL (no window functions, no CTEs) and uses the
//! `(symbol, timestamp)` index; the window logic lives in Rust. Tables are never created: a
//! missing table is reported by [`KlineSource::table_exists`].

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{AssertSqlSafe, Row};

use crate::kline::{Kline, naive, utc};
use crate::timeframe::Timeframe;

/// How many datasets a cycle reads at the same time: enough to overlap one dataset's round
/// trips with another's, few enough to stay a light client of the extractor's database.
pub const READ_CONCURRENCY: usize = 4;

/// Connections per process: one per concurrent read, plus a health probe.
const MAX_CONNECTIONS: u32 = READ_CONCURRENCY as u32 + 1;

/// The columns of a range scan: every column a `Kline` is decoded from (by name).
const COLUMNS: &str = "`timestamp`, open_time, close_time, `interval`, open_price, high_price, \
     low_price, close_price, volume, quote_asset_volume, number_of_trades, \
     taker_buy_base_asset_volume, taker_buy_quote_asset_volume, extracted_at, id";

/// The columns a scan reads: a table missing any of them cannot be audited (its status says
/// which are missing) instead of failing the query for every dataset.
pub const REQUIRED_COLUMNS: [&str; 16] = [
    "id",
    "symbol",
    "timestamp",
    "open_time",
    "close_time",
    "interval",
    "open_price",
    "high_price",
    "low_price",
    "close_price",
    "volume",
    "quote_asset_volume",
    "number_of_trades",
    "taker_buy_base_asset_volume",
    "taker_buy_quote_asset_volume",
    "extracted_at",
];

/// A row that did not decode into a [`Kline`]: a NULL or zero date in a column we need, or a
/// value out of range. Reported as a finding about that row; the scan carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The row's `id`, when that column itself decoded.
    pub id: Option<String>,
    /// The row's `timestamp`, when it decoded (findings are keyed by it).
    pub timestamp: Option<DateTime<Utc>>,
    /// The first column that did not decode.
    pub column: &'static str,
    /// What was wrong with it (`null or zero date`, or the driver's message).
    pub reason: String,
}

/// A scanned row: a candle, or why it is not one.
pub type ScannedRow = Result<Kline, Undecodable>;

/// Rows opening at or after a given instant (rows from the future).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureRows {
    /// How many.
    pub count: i64,
    /// The earliest open time among them.
    pub first: DateTime<Utc>,
}

/// A failed read. Messages carry the table but never a URL or password.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The call did not finish within the source's timeout.
    #[error("mysql: {op} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The server refused or failed the query, or the connection broke.
    #[error("mysql: {op} failed: {source}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// The driver error.
        #[source]
        source: sqlx::Error,
    },
}

impl SourceError {
    fn query(op: &'static str) -> impl FnOnce(sqlx::Error) -> SourceError {
        move |source| SourceError::Query { op, source }
    }
}

/// A pool of connections to the extractor's database.
#[derive(Debug, Clone)]
pub struct KlineSource {
    pub(crate) pool: MySqlPool,
    pub(crate) timeout: Duration,
}

impl KlineSource {
    /// A source that connects lazily (the first query connects), so a database that is down at
    /// startup is a failed cycle, not a failed process. Each call is bounded by `timeout`
    /// (a scan: per row fetched, so a long healthy scan is never cut off).
    pub fn connect_lazy(options: MySqlConnectOptions, timeout: Duration) -> KlineSource {
        let pool = MySqlPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        KlineSource { pool, timeout }
    }

    /// Closes the pool, waiting at most the call timeout: a connection whose query is still
    /// blocked on the server (a timed-out read) must not hold the caller up forever.
    pub async fn close(&self) {
        let _ = tokio::time::timeout(self.timeout, self.pool.close()).await;
    }

    pub(crate) async fn bounded<T, F>(&self, op: &'static str, fut: F) -> Result<T, SourceError>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(SourceError::query(op)),
            Err(_) => Err(SourceError::Timeout {
                op,
                after: self.timeout,
            }),
        }
    }

    /// `SELECT 1`: whether the server answers.
    ///
    /// # Errors
    /// When it does not, within the timeout.
    pub async fn ping(&self) -> Result<(), SourceError> {
        self.bounded("ping", sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map(|_| ())
    }

    /// Whether `klines_<suffix>` exists in the connection's database (`information_schema`;
    /// never a read of the table, which the extractor's ORM would create).
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn table_exists(&self, tf: Timeframe) -> Result<bool, SourceError> {
        let row = self
            .bounded(
                "table_exists",
                sqlx::query(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = DATABASE() AND table_name = ?",
                )
                .bind(tf.table())
                .fetch_one(&self.pool),
            )
            .await?;
        let n: i64 = row.try_get(0).map_err(SourceError::query("table_exists"))?;
        Ok(n > 0)
    }

    /// Whether the table has any row for `symbol`.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn symbol_exists(&self, tf: Timeframe, symbol: &str) -> Result<bool, SourceError> {
        let sql = format!("SELECT 1 FROM {} WHERE symbol = ? LIMIT 1", tf.table());
        let row = self
            .bounded(
                "symbol_exists",
                sqlx::query(AssertSqlSafe(sql))
                    .bind(symbol)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.is_some())
    }

    /// The distinct symbols of a table (cheap through the `(symbol, timestamp)` index).
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn symbols(&self, tf: Timeframe) -> Result<Vec<String>, SourceError> {
        let sql = format!("SELECT DISTINCT symbol FROM {} ORDER BY symbol", tf.table());
        let rows = self
            .bounded(
                "symbols",
                sqlx::query(AssertSqlSafe(sql)).fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(SourceError::query("symbols"))
    }

    /// The columns of [`REQUIRED_COLUMNS`] that `klines_<suffix>` lacks (`information_schema`),
    /// in that order; empty when the table has them all.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn missing_columns(&self, tf: Timeframe) -> Result<Vec<&'static str>, SourceError> {
        let rows = self
            .bounded(
                "missing_columns",
                sqlx::query(
                    "SELECT column_name FROM information_schema.columns \
                     WHERE table_schema = DATABASE() AND table_name = ?",
                )
                .bind(tf.table())
                .fetch_all(&self.pool),
            )
            .await?;
        let present: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).map(|c| c.to_ascii_lowercase()))
            .collect::<Result<_, _>>()
            .map_err(SourceError::query("missing_columns"))?;
        Ok(REQUIRED_COLUMNS
            .into_iter()
            .filter(|c| !present.iter().any(|p| p == c))
            .collect())
    }

    /// The rows of `symbol` opening at or after `from`: their number and the earliest open
    /// time, or `None` when there are none. One indexed range probe.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn future_rows(
        &self,
        tf: Timeframe,
        symbol: &str,
        from: DateTime<Utc>,
    ) -> Result<Option<FutureRows>, SourceError> {
        let sql = format!(
            "SELECT COUNT(*), MIN(`timestamp`) FROM {} WHERE symbol = ? AND `timestamp` >= ?",
            tf.table()
        );
        let row = self
            .bounded(
                "future_rows",
                sqlx::query(AssertSqlSafe(sql))
                    .bind(symbol)
                    .bind(naive(from))
                    .fetch_one(&self.pool),
            )
            .await?;
        let count: i64 = row.try_get(0).map_err(SourceError::query("future_rows"))?;
        let first: Option<NaiveDateTime> = row.try_get(1).ok().flatten();
        Ok(match (count, first) {
            (n, Some(first)) if n > 0 => Some(FutureRows {
                count: n,
                first: utc(first),
            }),
            _ => None,
        })
    }

    /// The newest row of `symbol` that opened before `before`, decoded or not: it anchors a gap
    /// that began before the window, and freshness when the window holds no closed row.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn newest_before(
        &self,
        tf: Timeframe,
        symbol: &str,
        before: DateTime<Utc>,
    ) -> Result<Option<ScannedRow>, SourceError> {
        let table = tf.table();
        let sql = format!(
            "SELECT {COLUMNS} FROM {table} WHERE symbol = ? AND `timestamp` < ? \
             ORDER BY `timestamp` DESC LIMIT 1"
        );
        let row = self
            .bounded(
                "newest_before",
                sqlx::query(AssertSqlSafe(sql))
                    .bind(symbol)
                    .bind(naive(before))
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.map(|r| decode(&r)))
    }

    /// Streams the rows of `symbol` with `timestamp ∈ [start, end)` in timestamp order into
    /// `each`, without holding them in memory. A row that does not decode is handed over as
    /// [`Undecodable`] and the scan goes on. Returns the number of rows.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails or no row arrives within the timeout.
    pub async fn scan(
        &self,
        tf: Timeframe,
        symbol: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut each: impl FnMut(ScannedRow),
    ) -> Result<u64, SourceError> {
        let table = tf.table();
        let sql = format!(
            "SELECT {COLUMNS} FROM {table} WHERE symbol = ? AND `timestamp` >= ? AND `timestamp` < ? \
             ORDER BY `timestamp`, id"
        );
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(symbol)
            .bind(naive(start))
            .bind(naive(end));
        let mut rows = query.fetch(&self.pool);
        let mut n = 0u64;
        while let Some(row) = self.bounded("scan", rows.try_next()).await? {
            each(decode(&row));
            n += 1;
        }
        Ok(n)
    }
}

/// Why a column did not decode: NULL (MySQL also hands a zero date over as NULL) or a value
/// the type cannot hold.
fn column<T>(row: &MySqlRow, name: &'static str) -> Result<T, (&'static str, String)>
where
    for<'r> T: sqlx::Decode<'r, sqlx::MySql> + sqlx::Type<sqlx::MySql>,
{
    match row.try_get::<Option<T>, _>(name) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err((name, "null or zero date".to_owned())),
        Err(e) => Err((name, e.to_string())),
    }
}

/// Decodes one row; never fails the scan.
fn decode(row: &MySqlRow) -> ScannedRow {
    decode_columns(row).map_err(|(column, reason)| Undecodable {
        id: row.try_get::<Option<String>, _>("id").ok().flatten(),
        timestamp: row
            .try_get::<Option<NaiveDateTime>, _>("timestamp")
            .ok()
            .flatten()
            .map(utc),
        column,
        reason,
    })
}

fn decode_columns(row: &MySqlRow) -> Result<Kline, (&'static str, String)> {
    let time = |name| column::<NaiveDateTime>(row, name).map(utc);
    let dec = |name| column::<Decimal>(row, name);
    Ok(Kline {
        id: column(row, "id")?,
        timestamp: time("timestamp")?,
        open_time: time("open_time")?,
        close_time: time("close_time")?,
        interval: column(row, "interval")?,
        open: dec("open_price")?,
        high: dec("high_price")?,
        low: dec("low_price")?,
        close: dec("close_price")?,
        volume: dec("volume")?,
        quote_asset_volume: dec("quote_asset_volume")?,
        number_of_trades: column::<i32>(row, "number_of_trades").map(i64::from)?,
        taker_buy_base: dec("taker_buy_base_asset_volume")?,
        taker_buy_quote: dec("taker_buy_quote_asset_volume")?,
        extracted_at: time("extracted_at")?,
    })
}
