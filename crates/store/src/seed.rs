//! Building a copy of the extractor's database: its DDL, and rows inserted as the extractor writes
//! them. For tests and the local demo only; production never creates or writes these tables.

use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Executor};

use crate::kline::{Kline, naive};
use crate::timeframe::Timeframe;

/// The extractor's DDL as it runs in production (`klines_*`, `trades`, `funding_rates`, with their
/// indexes and the defects the audits look for), so tests and the demo seed the same schema.
pub const EXTRACTOR_SCHEMA: &str = include_str!("testing/extractor-schema.sql");

/// Rows per multi-row `INSERT`: well under `max_allowed_packet` and the 65,535 placeholders
/// limit (17 per row).
const INSERT_CHUNK: usize = 500;

/// The statements of a DDL script, in order: `--` comment lines removed first (they may hold
/// semicolons), then split on `;`.
pub fn statements(ddl: &str) -> Vec<String> {
    let text = ddl
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Runs every statement of `ddl` on `pool`, in order.
///
/// # Errors
/// The first statement MySQL rejects.
pub async fn apply_ddl(pool: &MySqlPool, ddl: &str) -> Result<(), sqlx::Error> {
    for stmt in statements(ddl) {
        pool.execute(AssertSqlSafe(stmt)).await?;
    }
    Ok(())
}

/// Inserts candles into the timeframe's table as the extractor would (every column set,
/// `price_change` = close − open, `extractor_version` 1.0.0, `source` binance-futures).
///
/// # Errors
/// The first failing `INSERT` (e.g. a duplicate id or a missing table).
pub async fn insert_klines(
    pool: &MySqlPool,
    tf: Timeframe,
    symbol: &str,
    rows: &[Kline],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = format!(
            "INSERT INTO {} (id, symbol, `timestamp`, open_time, close_time, `interval`, \
             open_price, high_price, low_price, close_price, volume, quote_asset_volume, \
             number_of_trades, taker_buy_base_asset_volume, taker_buy_quote_asset_volume, \
             price_change, price_change_percent, extracted_at, extractor_version, source) VALUES ",
            tf.table()
        );
        let one = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?,'1.0.0','binance-futures')";
        sql.push_str(&vec![one; chunk.len()].join(","));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for k in chunk {
            q = q
                .bind(k.id.clone())
                .bind(symbol.to_owned())
                .bind(naive(k.timestamp))
                .bind(naive(k.open_time))
                .bind(naive(k.close_time))
                .bind(k.interval.clone())
                .bind(k.open)
                .bind(k.high)
                .bind(k.low)
                .bind(k.close)
                .bind(k.volume)
                .bind(k.quote_asset_volume)
                .bind(i32::try_from(k.number_of_trades).unwrap_or(i32::MAX))
                .bind(k.taker_buy_base)
                .bind(k.taker_buy_quote)
                .bind(k.close - k.open)
                .bind(naive(k.extracted_at));
        }
        q.execute(pool).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_splits_into_its_create_statements() {
        let stmts = statements(EXTRACTOR_SCHEMA);
        assert!(
            stmts.iter().all(|s| s.starts_with("CREATE TABLE")),
            "{stmts:?}"
        );
        assert!(stmts.iter().any(|s| s.contains("klines_h1")));
        assert_eq!(stmts.len(), 7);
    }

    #[test]
    fn semicolons_in_comments_do_not_split() {
        let stmts = statements("-- a; b\nCREATE TABLE t (x INT);\n\n-- c;\nSELECT 1;");
        assert_eq!(stmts, ["CREATE TABLE t (x INT)", "SELECT 1"]);
    }
}
