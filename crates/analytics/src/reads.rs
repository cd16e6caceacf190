//! One cycle's reads: every configured (timeframe, symbol) from MySQL, then the pure analysis
//! off the async runtime.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use store::{KlineSource, SourceError};

use crate::analysis::{Analysis, SymbolResults, analyze, is_hourly, read_span};
use crate::candle::Candle;
use crate::config::Settings;
use crate::metric::{Kind, Skip};

/// Why a cycle's reads or computation failed.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// MySQL failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The computation task panicked or was cancelled.
    #[error("analysis task failed: {0}")]
    Task(String),
}

/// One symbol's candles, or why they could not be used.
pub type Series = (String, Result<Vec<Candle>, Skip>);

/// Attempts at reading one symbol before it is skipped as `read_error`.
const READ_ATTEMPTS: u32 = 2;

/// Reads the candles of every symbol of `tf` in [now − span, now). A missing table gives no
/// candles (every metric is then skipped for insufficient data); it is never created. A table
/// lacking columns, a row that does not decode or a read that fails twice skips only the
/// symbols it affects, with that reason.
///
/// # Errors
/// [`SourceError`] when MySQL itself no longer answers: the cycle fails as a whole.
pub async fn read_timeframe(
    source: &KlineSource,
    settings: &Settings,
    tf: store::Timeframe,
    now: DateTime<Utc>,
) -> Result<Vec<Series>, SourceError> {
    let exists = match source.table_exists(tf).await {
        Ok(e) => e,
        Err(e) => return all_failed(source, settings, e, Skip::ReadError).await,
    };
    if exists {
        match source.missing_columns(tf).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(_) => {
                let skip = Err(Skip::SchemaMismatch);
                return Ok(settings
                    .symbols
                    .iter()
                    .map(|s| (s.clone(), skip.clone()))
                    .collect());
            }
            Err(e) => return all_failed(source, settings, e, Skip::ReadError).await,
        }
    }
    let start = now - read_span(tf, settings.options.window_mode);
    let mut series = Vec::with_capacity(settings.symbols.len());
    // A few symbols read at once, kept in the configured order.
    let mut reads = futures::stream::iter(settings.symbols.iter().cloned())
        .map(|symbol: String| async move {
            let candles = if exists {
                read_symbol(source, tf, &symbol, start, now).await?
            } else {
                Ok(Vec::new())
            };
            Ok::<_, SourceError>((symbol, candles))
        })
        .buffered(store::source::READ_CONCURRENCY);
    while let Some(s) = reads.next().await {
        series.push(s?);
    }
    Ok(series)
}

/// Every symbol skipped for `skip`, unless the server is gone (then the cycle fails).
async fn all_failed(
    source: &KlineSource,
    settings: &Settings,
    e: SourceError,
    skip: Skip,
) -> Result<Vec<Series>, SourceError> {
    source.ping().await.map_err(|_| e)?;
    Ok(settings
        .symbols
        .iter()
        .map(|s| (s.clone(), Err(skip)))
        .collect())
}

/// One symbol's candles, read up to twice.
async fn read_symbol(
    source: &KlineSource,
    tf: store::Timeframe,
    symbol: &str,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Result<Vec<Candle>, Skip>, SourceError> {
    let mut attempt = 1;
    loop {
        let mut candles = Vec::new();
        let mut undecodable = false;
        let read = source
            .scan(tf, symbol, start, now, |k| match k {
                Ok(k) => candles.push(Candle::from_kline(&k)),
                Err(_) => undecodable = true,
            })
            .await;
        match read {
            Ok(_) if undecodable => return Ok(Err(Skip::UndecodableRow)),
            Ok(_) => return Ok(Ok(candles)),
            Err(e) if attempt >= READ_ATTEMPTS => {
                source.ping().await.map_err(|_| e)?;
                return Ok(Err(Skip::ReadError));
            }
            Err(_) => attempt += 1,
        }
    }
}

/// Reads and analyses every configured timeframe at `now` (correlation on 1h only). Symbols
/// whose candles could not be used are analysed as skipped (every metric with the reason) and
/// left out of the correlation; the others are written as usual.
///
/// # Errors
/// [`CycleError`] when MySQL does not answer: the cycle fails as a whole and is retried.
pub async fn analyze_all(
    source: &KlineSource,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<Analysis>, CycleError> {
    source.ping().await?;
    let mut out = Vec::with_capacity(settings.timeframes.len());
    for &tf in &settings.timeframes {
        let read = read_timeframe(source, settings, tf, now).await?;
        let mut usable = Vec::with_capacity(read.len());
        let mut skipped = Vec::new();
        for (symbol, candles) in read {
            match candles {
                Ok(c) => usable.push((symbol, c)),
                Err(reason) => skipped.push((symbol, reason)),
            }
        }
        let options = settings.options;
        // The FFT and rolling statistics are CPU work: keep them off the async workers.
        let mut a = tokio::task::spawn_blocking(move || {
            analyze(&usable, tf, now, now, &options, is_hourly(tf))
        })
        .await
        .map_err(|e| CycleError::Task(e.to_string()))?;
        for (symbol, reason) in skipped {
            a.symbols.push(skipped_symbol(symbol, tf, reason));
        }
        out.push(a);
    }
    Ok(out)
}

/// A symbol none of whose metrics could be computed, for `reason`.
pub fn skipped_symbol(symbol: String, tf: store::Timeframe, reason: Skip) -> SymbolResults {
    let mut kinds = vec![Kind::Volatility, Kind::Volume, Kind::Trend, Kind::Deviation];
    if is_hourly(tf) {
        kinds.extend([Kind::Seasonality, Kind::Regime]);
    }
    SymbolResults {
        symbol,
        metrics: kinds.into_iter().map(|k| (k, Err(reason))).collect(),
    }
}
