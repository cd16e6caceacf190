//! One cycle's trades reads: per symbol, the reference candles, one streaming scan of the
//! trades window and the id-range probe; once per cycle, the clamped-id probe. A read that
//! fails twice makes that dataset `read_error` and never stops the others or the klines audit.

use chrono::{DateTime, Duration, Utc};
use store::trades::TRADES_TABLE;
use store::{KlineSource, SourceError};
use tokio_util::sync::CancellationToken;

use crate::config::{Settings, Symbols, default_max_lag};
use crate::reads::{ANY_SYMBOL, READ_ATTEMPTS, RETRY_PAUSE, read_failed};
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

/// Audits every trades dataset of `settings` at `now` (none when `AUDIT_TRADES` is off),
/// stopping early (with the reports so far) once `stop` is cancelled. Isolated per dataset
/// like the klines datasets: a read that fails twice while the server still answers becomes
/// that dataset's `read_error` report, and the other datasets carry on.
///
/// # Errors
/// [`SourceError`] when MySQL itself does not answer after a failed read: the cycle fails as a
/// whole and is retried, as for the klines datasets.
pub async fn audit_all(
    source: &KlineSource,
    settings: &Settings,
    now: DateTime<Utc>,
    stop: &CancellationToken,
) -> Result<Vec<TradesReport>, SourceError> {
    if !settings.trades.enabled {
        return Ok(Vec::new());
    }
    let p = params(settings, now);
    let symbols = match symbols(source, settings, p).await {
        Ok(s) => s,
        Err(e) => {
            return Ok(vec![read_error(
                ANY_SYMBOL,
                p,
                read_failed(source, e).await?,
            )]);
        }
    };
    let (trades_ok, reference_ok) = match tables_present(source, p).await {
        Ok(t) => t,
        Err(e) => {
            let text = read_failed(source, e).await?;
            return Ok(symbols
                .iter()
                .map(|s| read_error(s, p, text.clone()))
                .collect());
        }
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
        return Ok(symbols
            .iter()
            .map(|s| TradesReport::informational(s, p, TradesStatus::TableMissing, details.clone()))
            .collect());
    }
    let clamped = match source.clamped_trade().await {
        Ok(holder) => Ok(holder),
        Err(e) => Err(read_failed(source, e).await?),
    };
    let mut reports = Vec::with_capacity(symbols.len());
    for symbol in &symbols {
        if stop.is_cancelled() {
            break;
        }
        reports.push(match &clamped {
            Ok(holder) => audit_with_retry(source, symbol, p, holder).await?,
            Err(text) => read_error(symbol, p, text.clone()),
        });
    }
    Ok(reports)
}

/// Audits one symbol, trying its reads twice; a symbol that still fails while the server
/// answers is reported as `read_error`.
async fn audit_with_retry(
    source: &KlineSource,
    symbol: &str,
    p: TradesParams,
    clamped_holder: &Option<(String, String)>,
) -> Result<TradesReport, SourceError> {
    let mut attempt = 1;
    loop {
        match audit_one(source, symbol, p, clamped_holder.clone()).await {
            Ok(r) => return Ok(r),
            Err(e) if attempt >= READ_ATTEMPTS => {
                return Ok(read_error(symbol, p, read_failed(source, e).await?));
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
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

/// `text` is already redacted ([`read_failed`]).
fn read_error(symbol: &str, p: TradesParams, text: String) -> TradesReport {
    TradesReport::informational(symbol, p, TradesStatus::ReadError, text)
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
    // A reference row that does not decode leaves its candle without a reference (its trades
    // count as unreferenced); the klines dataset reports the row as `undecodable_row`.
    source
        .scan(p.reference, symbol, p.start(), p.end(), |row| {
            if let Ok(k) = row {
                candles.push((
                    k.open_time,
                    Reference {
                        trades: k.number_of_trades,
                        volume: k.volume,
                        quote_volume: k.quote_asset_volume,
                    },
                ));
            }
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
