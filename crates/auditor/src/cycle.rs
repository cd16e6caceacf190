//! One audit cycle's reads: every configured dataset, streamed from MySQL into the pure audit.

use chrono::{DateTime, Utc};
use store::{KlineSource, SourceError, Timeframe};

use crate::config::{Settings, Symbols};
use crate::dataset::{DatasetAudit, DatasetReport, Params, Status};

/// The placeholder symbol of a `table_missing` report when symbols are discovered per table
/// (`AUDIT_SYMBOLS=auto`): there is no table to discover them from.
pub const ANY_SYMBOL: &str = "*";

/// The parameters of one dataset's audit at `now`.
pub fn params(settings: &Settings, tf: Timeframe, now: DateTime<Utc>) -> Params {
    Params {
        now,
        window: settings.window,
        timeframe: tf,
        tolerance: settings.tolerance,
        max_lag: settings
            .max_lag
            .get(&tf)
            .copied()
            .unwrap_or_else(|| crate::config::default_max_lag(tf)),
        profile: settings.profile,
        max_row_findings: settings.max_row_findings,
    }
}

/// Audits every dataset of `settings` at `now` (C.2). Missing tables and symbols become
/// informational reports, not errors.
///
/// # Errors
/// The first [`SourceError`]: the cycle fails as a whole and is retried.
pub async fn audit_all(
    source: &KlineSource,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<DatasetReport>, SourceError> {
    let mut reports = Vec::new();
    for &tf in &settings.timeframes {
        let p = params(settings, tf, now);
        if !source.table_exists(tf).await? {
            match &settings.symbols {
                Symbols::List(list) => reports.extend(
                    list.iter()
                        .map(|s| DatasetReport::informational(s, p, Status::TableMissing)),
                ),
                Symbols::Auto => reports.push(DatasetReport::informational(
                    ANY_SYMBOL,
                    p,
                    Status::TableMissing,
                )),
            }
            continue;
        }
        let symbols = match &settings.symbols {
            Symbols::List(list) => list.clone(),
            Symbols::Auto => source.symbols(tf).await?,
        };
        for symbol in symbols {
            reports.push(audit_one(source, &symbol, p).await?);
        }
    }
    Ok(reports)
}

/// Audits one dataset whose table exists.
///
/// # Errors
/// [`SourceError`] when a read fails.
pub async fn audit_one(
    source: &KlineSource,
    symbol: &str,
    p: Params,
) -> Result<DatasetReport, SourceError> {
    let tf = p.timeframe;
    if !source.symbol_exists(tf, symbol).await? {
        return Ok(DatasetReport::informational(
            symbol,
            p,
            Status::NotExtracted,
        ));
    }
    let prev = source.newest_before(tf, symbol, p.start()).await?;
    let mut audit = DatasetAudit::new(symbol, p, prev.as_ref());
    source
        .scan(tf, symbol, p.start(), p.now, |row| audit.push(row))
        .await?;
    Ok(audit.finish())
}
