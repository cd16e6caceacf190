//! The extractor's `trades` table, read-only: existence checks, one streaming scan of a symbol's
//! window through the `(symbol, timestamp)` index, and two cheap probes on the unique
//! `trade_id` index that expose the table's known defects.
//!
//! The table keeps a trade's millisecond only in its `id` (`<SYMBOL>_<epoch ms>`): `timestamp`
//! and `trade_time` are whole-second DATETIMEs. `trade_id` is a 32-bit INT unique across all
//! symbols, so Binance ids above 2³¹ clamp to [`CLAMPED_TRADE_ID`] under `INSERT IGNORE`.
//! A row that does not decode (NULL, a zero date, a value out of range) is handed to the caller
//! as an [`Undecodable`] value, never as an error: one bad row must not hide the others.

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::mysql::{MySqlPool, MySqlRow};

use crate::kline::{naive, utc};
use crate::source::{KlineSource, SourceError};

/// The table's name. Fixed, so it is safe in SQL.
pub const TRADES_TABLE: &str = "trades";

/// The value every `trade_id` above 2³¹ − 1 becomes under `INSERT IGNORE` into an INT column.
pub const CLAMPED_TRADE_ID: i64 = 2_147_483_647;

/// Rows per multi-row `INSERT` when seeding (10 placeholders per row, far below 65,535).
const INSERT_CHUNK: usize = 1_000;

/// One stored trade, the columns the audit needs, read exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// `timestamp` (= `trade_time`), whole seconds.
    pub timestamp: DateTime<Utc>,
    /// The millisecond written into the id, when the id has the `<SYMBOL>_<ms>` form.
    pub id_millis: Option<i64>,
    /// `trade_id` as stored (an INT: clamped ids read as [`CLAMPED_TRADE_ID`]).
    pub trade_id: i64,
    /// Base quantity.
    pub quantity: Decimal,
    /// Quote quantity.
    pub quote_quantity: Decimal,
}

/// A row with a value the type cannot hold: which row (when its id decoded) and which column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The row's id, if that column decoded.
    pub id: Option<String>,
    /// The first column that did not decode.
    pub column: &'static str,
}

/// What the scan yields per row.
pub type TradeRow = Result<Trade, Undecodable>;

/// The millisecond of an id `<SYMBOL>_<ms>`, if it has that form.
pub fn id_millis(id: &str) -> Option<i64> {
    let (_, ms) = id.rsplit_once('_')?;
    if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ms.parse().ok()
}

impl KlineSource {
    /// Whether the `trades` table exists (`information_schema`; never a read of the table).
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn trades_table_exists(&self) -> Result<bool, SourceError> {
        let row = self
            .bounded(
                "trades_table_exists",
                sqlx::query(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = DATABASE() AND table_name = ?",
                )
                .bind(TRADES_TABLE)
                .fetch_one(&self.pool),
            )
            .await?;
        let n: i64 = row.try_get(0).map_err(|source| SourceError::Query {
            op: "trades_table_exists",
            source,
        })?;
        Ok(n > 0)
    }

    /// Whether `trades` has any row for `symbol` (one index lookup).
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn trades_symbol_exists(&self, symbol: &str) -> Result<bool, SourceError> {
        let row = self
            .bounded(
                "trades_symbol_exists",
                sqlx::query("SELECT 1 FROM trades WHERE symbol = ? LIMIT 1")
                    .bind(symbol)
                    .fetch_optional(&self.pool),
            )
            .await?;
        Ok(row.is_some())
    }

    /// Streams the trades of `symbol` with `timestamp ∈ [start, end)` into `each`, ordered by
    /// `timestamp` then `id` (the index order, so the ids' milliseconds never go back within
    /// a symbol). Nothing is held: memory is flat in the number of rows. Returns the row count.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails or no row arrives within the timeout. Rows that do
    /// not decode are passed on as [`Undecodable`].
    pub async fn scan_trades(
        &self,
        symbol: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut each: impl FnMut(TradeRow),
    ) -> Result<u64, SourceError> {
        let query = sqlx::query(
            "SELECT id, `timestamp`, trade_id, quantity, quote_quantity FROM trades \
             WHERE symbol = ? AND `timestamp` >= ? AND `timestamp` < ? ORDER BY `timestamp`, id",
        )
        .bind(symbol)
        .bind(naive(start))
        .bind(naive(end));
        let mut rows = query.fetch(&self.pool);
        let mut n = 0u64;
        while let Some(row) = self.bounded("scan_trades", rows.try_next()).await? {
            each(decode(&row));
            n += 1;
        }
        Ok(n)
    }

    /// The bare read the audit is measured against: the same query, rows counted, nothing
    /// decoded.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn count_trades_streamed(
        &self,
        symbol: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<u64, SourceError> {
        let query = sqlx::query(
            "SELECT id, `timestamp`, trade_id, quantity, quote_quantity FROM trades \
             WHERE symbol = ? AND `timestamp` >= ? AND `timestamp` < ? ORDER BY `timestamp`, id",
        )
        .bind(symbol)
        .bind(naive(start))
        .bind(naive(end));
        let mut rows = query.fetch(&self.pool);
        let mut n = 0u64;
        while self
            .bounded("scan_trades", rows.try_next())
            .await?
            .is_some()
        {
            n += 1;
        }
        Ok(n)
    }

    /// How many rows of any symbol hold a `trade_id` in `[lo, hi]`: a range count on the
    /// unique index, read from the index alone.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn trade_ids_in_range(&self, lo: i64, hi: i64) -> Result<i64, SourceError> {
        let row = self
            .bounded(
                "trade_ids_in_range",
                sqlx::query("SELECT COUNT(*) FROM trades WHERE trade_id BETWEEN ? AND ?")
                    .bind(lo)
                    .bind(hi)
                    .fetch_one(&self.pool),
            )
            .await?;
        row.try_get::<i64, _>(0)
            .map_err(|source| SourceError::Query {
                op: "trade_ids_in_range",
                source,
            })
    }

    /// The row holding the clamped id [`CLAMPED_TRADE_ID`], as (symbol, id), if any. Unique
    /// index lookup; at most one row can hold it.
    ///
    /// # Errors
    /// [`SourceError`] when the query fails.
    pub async fn clamped_trade(&self) -> Result<Option<(String, String)>, SourceError> {
        let row = self
            .bounded(
                "clamped_trade",
                sqlx::query("SELECT symbol, id FROM trades WHERE trade_id = ? LIMIT 1")
                    .bind(CLAMPED_TRADE_ID)
                    .fetch_optional(&self.pool),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let get = |i: usize| {
            row.try_get::<String, _>(i)
                .map_err(|source| SourceError::Query {
                    op: "clamped_trade",
                    source,
                })
        };
        Ok(Some((get(0)?, get(1)?)))
    }
}

/// Decodes one row of the scan (columns by position: id, timestamp, trade_id, quantity,
/// quote_quantity); the id is borrowed, so a good row allocates nothing.
fn decode(row: &MySqlRow) -> TradeRow {
    let id = row.try_get::<Option<&str>, _>(0).ok().flatten();
    let bad = |column: &'static str| Undecodable {
        id: id.map(str::to_owned),
        column,
    };
    let Some(id_str) = id else {
        return Err(bad("id"));
    };
    let timestamp = row
        .try_get::<Option<NaiveDateTime>, _>(1)
        .ok()
        .flatten()
        .ok_or_else(|| bad("timestamp"))?;
    let trade_id = row
        .try_get::<Option<i32>, _>(2)
        .ok()
        .flatten()
        .ok_or_else(|| bad("trade_id"))?;
    let dec = |index: usize, column: &'static str| {
        row.try_get::<Option<Decimal>, _>(index)
            .ok()
            .flatten()
            .ok_or_else(|| bad(column))
    };
    Ok(Trade {
        timestamp: utc(timestamp),
        id_millis: id_millis(id_str),
        trade_id: i64::from(trade_id),
        quantity: dec(3, "quantity")?,
        quote_quantity: dec(4, "quote_quantity")?,
    })
}

/// A trade as Binance reports it, before the extractor stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct BinanceTrade {
    /// Binance's trade id (may exceed 2³¹).
    pub trade_id: i64,
    /// Trade time, epoch milliseconds.
    pub time_ms: i64,
    /// Price.
    pub price: Decimal,
    /// Base quantity.
    pub quantity: Decimal,
    /// Quote quantity.
    pub quote_quantity: Decimal,
    /// Whether the buyer was the maker.
    pub is_buyer_maker: bool,
}

/// Inserts trades as the extractor does, defects included: `INSERT IGNORE`, id
/// `<SYMBOL>_<ms>` (a second trade in a millisecond is dropped), `trade_id` into the INT column
/// (ids above 2³¹ − 1 clamp, and the unique index drops all but one). For tests and the local
/// demo only; production never writes this table. Returns the rows the server kept.
///
/// # Errors
/// The first failing `INSERT` (e.g. a missing table).
pub async fn insert_trades(
    pool: &MySqlPool,
    symbol: &str,
    trades: &[BinanceTrade],
    extracted_at: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let mut kept = 0;
    for chunk in trades.chunks(INSERT_CHUNK) {
        let mut sql = String::from(
            "INSERT IGNORE INTO trades (id, symbol, `timestamp`, trade_id, order_id, price, \
             quantity, quote_quantity, is_buyer_maker, commission, commission_asset, trade_time, \
             extracted_at, extractor_version, source) VALUES ",
        );
        let one = "(?,?,?,?,NULL,?,?,?,?,NULL,NULL,?,?,'1.0.0','binance-futures')";
        sql.push_str(&vec![one; chunk.len()].join(","));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in chunk {
            let time = DateTime::from_timestamp_millis(t.time_ms).unwrap_or_default();
            q = q
                .bind(format!("{symbol}_{}", t.time_ms))
                .bind(symbol.to_owned())
                .bind(naive(time))
                .bind(t.trade_id)
                .bind(t.price)
                .bind(t.quantity)
                .bind(t.quote_quantity)
                .bind(t.is_buyer_maker)
                .bind(naive(time))
                .bind(naive(extracted_at));
        }
        kept += q.execute(pool).await?.rows_affected();
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_millis_reads_the_suffix_only_when_it_is_all_digits() {
        assert_eq!(id_millis("BTCUSDT_1761055200123"), Some(1_761_055_200_123));
        assert_eq!(id_millis("BTC_USDT_5"), Some(5));
        assert_eq!(id_millis("BTCUSDT_"), None);
        assert_eq!(id_millis("BTCUSDT_12a"), None);
        assert_eq!(id_millis("BTCUSDT"), None);
    }
}
