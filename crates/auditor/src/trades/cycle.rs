//! One cycle's trades reads: per symbol, the reference candles, one streaming scan of the
//! trades window and the id-range probe; once per cycle, the clamped-id probe. A failed read
//! makes that dataset `read_error` and never stops the others or the klines audit.

use chrono::{DateTime, Duration, Utc};
use store::trades::TRADES_TABLE;
use store::{KlineSource, SourceError};

use crate::config::{Settings, Symbols, default_max_lag};
use crate::cycle::ANY_SYMBOL;
use crate::trades::reconcile::{
    Probes, Reference, TradesAudit, TradesParams, TradesReport, TradesStatus,
};

/// The parameters of the trades audits at `now`.
pub fn params(settings: &Settings, now: DateTime<Utc>) -> TradesParams {
    let reference = settings.trades.reference;
    TradesParams {
        now,
        window: settings.trades.window,
        reference,
        max_lag: settings
            .max_lag
            .get(&reference)
            .copied()
            .unwrap_or_else(|| default_max_lag(reference)),
    }
}

/// Audits every trades dataset of `settings` at `now` (none when `AUDIT_TRADES` is off).
/// Never fails: a read error is the affected datasets' status.
pub async fn audit_all(
    source: &KlineSource,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Vec<TradesReport> {
    if !settings.trades.enabled {
        return Vec::new();
    }
    let p = params(settings, now);
    let symbols = match symbols(source, settings, p).await {
        Ok(s) => s,
        Err(e) => return vec![read_error(ANY_SYMBOL, p, &e)],
    };
    let tables = tables_present(source, p).await;
    let (trades_ok, reference_ok) = match tables {
        Ok(t) => t,
        Err(e) => return symbols.iter().map(|s| read_error(s, p, &e)).collect(),
    };
    let missing = if !trades_ok {
        Some(format!("table {TRADES_TABLE} does not exist"))
    } else if !reference_ok {
        Some(format!(
            "reference table {} does not exist",
            p.reference.table()
        ))
    } else {
        None
    };
    if let Some(details) = missing {
        return symbols
            .iter()
            .map(|s| TradesReport::informational(s, p, TradesStatus::TableMissing, details.clone()))
            .collect();
    }
    let clamped = source.clamped_trade().await;
    let mut reports = Vec::with_capacity(symbols.len());
    for symbol in &symbols {
        let report = match &clamped {
            Ok(holder) => audit_one(source, symbol, p, holder.clone())
                .await
                .unwrap_or_else(|e| read_error(symbol, p, &e)),
            Err(e) => read_error(symbol, p, e),
        };
        reports.push(report);
    }
    reports
}

/// The configured symbols, or with `AUDIT_SYMBOLS=auto` those of the reference table.
async fn symbols(
    source: &KlineSource,
    settings: &Settings,
    p: TradesParams,
) -> Result<Vec<String>, SourceError> {
    match &settings.symbols {
        Symbols::List(list) => Ok(list.clone()),
        Symbols::Auto if source.table_exists(p.reference).await? => {
            source.symbols(p.reference).await
        }
        Symbols::Auto => Ok(vec![ANY_SYMBOL.to_owned()]),
    }
}

async fn tables_present(
    source: &KlineSource,
    p: TradesParams,
) -> Result<(bool, bool), SourceError> {
    Ok((
        source.trades_table_exists().await?,
        source.table_exists(p.reference).await?,
    ))
}

fn read_error(symbol: &str, p: TradesParams, e: &SourceError) -> TradesReport {
    TradesReport::informational(symbol, p, TradesStatus::ReadError, e.to_string())
}

/// Audits one symbol whose tables exist.
///
/// # Errors
/// [`SourceError`] when a read fails.
pub async fn audit_one(
    source: &KlineSource,
    symbol: &str,
    p: TradesParams,
    clamped_holder: Option<(String, String)>,
) -> Result<TradesReport, SourceError> {
    if !source.trades_symbol_exists(symbol).await? {
        return Ok(TradesReport::informational(
            symbol,
            p,
            TradesStatus::NotExtracted,
            format!("{TRADES_TABLE} has no rows for {symbol}"),
        ));
    }
    let mut candles = Vec::with_capacity(p.candles());
    source
        .scan(p.reference, symbol, p.start(), p.end(), |k| {
            candles.push((
                k.open_time,
                Reference {
                    trades: k.number_of_trades,
                    volume: k.volume,
                    quote_volume: k.quote_asset_volume,
                },
            ));
        })
        .await?;
    let mut audit = TradesAudit::new(symbol, p, candles);
    // One second past the end: MySQL rounds a DATETIME to the nearest second, so the last
    // half-second's trades are stored at `end`. The audit places each by its id's millisecond.
    source
        .scan_trades(symbol, p.start(), p.end() + Duration::seconds(1), |row| {
            audit.push(row)
        })
        .await?;
    let ids_in_range = match audit.id_range() {
        Some((lo, hi)) => Some(source.trade_ids_in_range(lo, hi).await?),
        None => None,
    };
    Ok(audit.finish(&Probes {
        ids_in_range,
        clamped_holder,
    }))
}
