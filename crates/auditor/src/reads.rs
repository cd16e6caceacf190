//! One audit cycle's reads: every configured dataset, streamed from MySQL into the pure audit.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use store::{KlineSource, SourceError, Timeframe};
use tokio_util::sync::CancellationToken;

use crate::config::{Settings, Symbols};
use crate::dataset::{DatasetAudit, DatasetReport, Params, Status};

/// The placeholder symbol of a `table_missing` report when symbols are discovered per table
/// (`AUDIT_SYMBOLS=auto`): there is no table to discover them from.
pub const ANY_SYMBOL: &str = "*";

/// Attempts at reading one dataset before it is reported as `read_error`.
pub(crate) const READ_ATTEMPTS: u32 = 2;

/// Pause before the second attempt.
pub(crate) const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// The parameters of one dataset's audit at `now`. The window is widened per timeframe to
/// W_tf = max(W, L + N·I), so it always holds at least N due slots (a 24 h window holds no
/// closed `1d` candle once the lag is subtracted).
pub fn params(settings: &Settings, tf: Timeframe, now: DateTime<Utc>) -> Params {
    let max_lag = settings
        .max_lag
        .get(&tf)
        .copied()
        .unwrap_or_else(|| crate::config::default_max_lag(tf));
    Params {
        now,
        window: settings
            .window
            .max(max_lag.saturating_add(settings.min_due_slots.saturating_mul(tf.seconds()))),
        timeframe: tf,
        tolerance: settings.tolerance,
        max_lag,
        profile: settings.profile,
        max_row_findings: settings.max_row_findings,
    }
}

/// The start of the widest window of `settings` at `now`.
pub fn earliest_start(settings: &Settings, now: DateTime<Utc>) -> DateTime<Utc> {
    settings
        .timeframes
        .iter()
        .map(|&tf| params(settings, tf, now).start())
        .min()
        .unwrap_or(now)
}

/// Audits every dataset of `settings` at `now`, stopping early (with the reports so far)
/// once `stop` is cancelled. One dataset never stops the others: a missing table or symbol, a
/// table lacking columns, or a read that fails twice while the server still answers becomes
/// that dataset's report.
///
/// # Errors
/// [`SourceError`] when MySQL itself does not answer (at the start, or after a failed read):
/// the cycle fails as a whole and is retried.
pub async fn audit_all(
    source: &KlineSource,
    settings: &Settings,
    now: DateTime<Utc>,
    stored: Option<&HashSet<String>>,
    stop: &CancellationToken,
) -> Result<Vec<DatasetReport>, SourceError> {
    source.ping().await?;
    let mut reports = Vec::new();
    for &tf in &settings.timeframes {
        if stop.is_cancelled() {
            break;
        }
        let p = params(settings, tf, now);
        let table_level: Vec<String> = match &settings.symbols {
            Symbols::List(list) => list.clone(),
            Symbols::Auto => vec![ANY_SYMBOL.to_owned()],
        };
        match table_state(source, tf).await {
            Ok(TableState::Present) => {}
            Ok(TableState::Missing) => {
                reports.extend(
                    table_level
                        .iter()
                        .map(|s| DatasetReport::informational(s, p, Status::TableMissing)),
                );
                continue;
            }
            Ok(TableState::LacksColumns(columns)) => {
                reports.extend(
                    table_level
                        .iter()
                        .map(|s| DatasetReport::schema_mismatch(s, p, &columns)),
                );
                continue;
            }
            Err(e) => {
                let text = read_failed(source, e).await?;
                reports.extend(
                    table_level
                        .iter()
                        .map(|s| DatasetReport::read_error(s, p, &text)),
                );
                continue;
            }
        }
        let symbols = match &settings.symbols {
            Symbols::List(list) => list.clone(),
            Symbols::Auto => match source.symbols(tf).await {
                Ok(s) => s,
                Err(e) => {
                    let text = read_failed(source, e).await?;
                    reports.push(DatasetReport::read_error(ANY_SYMBOL, p, &text));
                    continue;
                }
            },
        };
        // A few datasets in flight at once (each streamed, so memory stays flat), reports in
        // the configured order; no new dataset starts once `stop` is cancelled.
        let mut audits = futures::stream::iter(symbols)
            .take_while(|_| std::future::ready(!stop.is_cancelled()))
            .map(|symbol| async move { audit_with_retry(source, &symbol, p, stored).await })
            .buffered(store::source::READ_CONCURRENCY);
        while let Some(report) = audits.next().await {
            reports.push(report?);
        }
    }
    Ok(reports)
}

/// What the checks of a timeframe's table found.
enum TableState {
    Present,
    Missing,
    LacksColumns(Vec<&'static str>),
}

async fn table_state(source: &KlineSource, tf: Timeframe) -> Result<TableState, SourceError> {
    if !source.table_exists(tf).await? {
        return Ok(TableState::Missing);
    }
    let missing = source.missing_columns(tf).await?;
    Ok(if missing.is_empty() {
        TableState::Present
    } else {
        TableState::LacksColumns(missing)
    })
}

/// After a failed read: `Err` when MySQL no longer answers (the whole cycle fails), else the
/// error's text for the dataset's `read_error` report.
pub(crate) async fn read_failed(
    source: &KlineSource,
    e: SourceError,
) -> Result<String, SourceError> {
    source.ping().await?;
    Ok(runtime::redact::redact_text(&e.to_string()))
}

/// Audits one dataset, trying its reads twice; a dataset that still fails while the server
/// answers is reported as `read_error`.
async fn audit_with_retry(
    source: &KlineSource,
    symbol: &str,
    p: Params,
    stored: Option<&HashSet<String>>,
) -> Result<DatasetReport, SourceError> {
    let mut attempt = 1;
    loop {
        match audit_one(source, symbol, p, stored).await {
            Ok(r) => return Ok(r),
            Err(e) if attempt >= READ_ATTEMPTS => {
                let text = read_failed(source, e).await?;
                return Ok(DatasetReport::read_error(symbol, p, &text));
            }
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Audits one dataset whose table exists. `stored`: the row-finding keys already stored, when
/// known (the row cap applies only to the others).
///
/// # Errors
/// [`SourceError`] when a read fails.
pub async fn audit_one(
    source: &KlineSource,
    symbol: &str,
    p: Params,
    stored: Option<&HashSet<String>>,
) -> Result<DatasetReport, SourceError> {
    let tf = p.timeframe;
    if !source.symbol_exists(tf, symbol).await? {
        return Ok(DatasetReport::informational(
            symbol,
            p,
            Status::NotExtracted,
        ));
    }
    // A previous row that does not decode cannot anchor the leading gap: as if there were none.
    let prev = source
        .newest_before(tf, symbol, p.start())
        .await?
        .and_then(Result::ok);
    let mut audit = DatasetAudit::new(symbol, p, prev.as_ref());
    if let Some(stored) = stored {
        let prefix = format!("{symbol}|{}|", tf.label());
        let mine = stored
            .iter()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        audit = audit.with_stored(mine);
    }
    source
        .scan(tf, symbol, p.start(), p.now, |row| audit.push_scanned(row))
        .await?;
    let future_from = p.now + chrono::Duration::seconds(tf.seconds());
    audit.future_rows(source.future_rows(tf, symbol, future_from).await?);
    Ok(audit.finish())
}
