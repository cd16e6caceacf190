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

/// Connections per process: one audit scans one dataset at a time, plus a health probe.
const MAX_CONNECTIONS: u32 = 3;

/// The columns of a range scan, in the order of `mysql-source.md` §1.
const COLUMNS: &str = "`timestamp`, open_time, close_time, `interval`, open_price, high_price, \
     low_price, close_price, volume, quote_asset_volume, number_of_trades, \
     taker_buy_base_asset_volume, taker_buy_quote_asset_volume, extracted_at, id";

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
    /// A row did not decode into a [`Kline`].
    #[error("mysql: {table}: column {column} did not decode: {source}")]
    Decode {
        /// The table.
        table: String,
        /// The column.
        column: &'static str,
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

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
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

    /// The newest row of `symbol` that opened before `before` (C.2 step 4).
    ///
    /// # Errors
    /// [`SourceError`] when the query fails or the row does not decode.
    pub async fn newest_before(
        &self,
        tf: Timeframe,
        symbol: &str,
        before: DateTime<Utc>,
    ) -> Result<Option<Kline>, SourceError> {
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
        row.map(|r| decode(&table, &r)).transpose()
    }

    /// Streams the rows of `symbol` with `timestamp ∈ [start, end)` in timestamp order into
    /// `each`, without holding them in memory. Returns the number of rows.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails, a row does not decode, or no row arrives within
    /// the timeout.
    pub async fn scan(
        &self,
        tf: Timeframe,
        symbol: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut each: impl FnMut(Kline),
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
            each(decode(&table, &row)?);
            n += 1;
        }
        Ok(n)
    }
}

fn decode(table: &str, row: &MySqlRow) -> Result<Kline, SourceError> {
    let err = |column: &'static str| {
        move |source| SourceError::Decode {
            table: table.to_owned(),
            column,
            source,
        }
    };
    let time = |column: &'static str| -> Result<DateTime<Utc>, SourceError> {
        row.try_get::<NaiveDateTime, _>(column)
            .map(utc)
            .map_err(err(column))
    };
    let dec = |column: &'static str| -> Result<Decimal, SourceError> {
        row.try_get::<Decimal, _>(column).map_err(err(column))
    };
    Ok(Kline {
        id: row.try_get("id").map_err(err("id"))?,
        timestamp: time("timestamp")?,
        open_time: time("open_time")?,
        close_time: time("close_time")?,
        interval: row.try_get("interval").map_err(err("interval"))?,
        open: dec("open_price")?,
        high: dec("high_price")?,
        low: dec("low_price")?,
        close: dec("close_price")?,
        volume: dec("volume")?,
        quote_asset_volume: dec("quote_asset_volume")?,
        number_of_trades: row
            .try_get::<i32, _>("number_of_trades")
            .map(i64::from)
            .map_err(err("number_of_trades"))?,
        taker_buy_base: dec("taker_buy_base_asset_volume")?,
        taker_buy_quote: dec("taker_buy_quote_asset_volume")?,
        extracted_at: time("extracted_at")?,
    })
}
