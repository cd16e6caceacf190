//! One cycle's reads: every configured (timeframe, symbol) from MySQL, then the pure analysis
//! off the async runtime.

use chrono::{DateTime, Utc};
use store::{KlineSource, SourceError};

use crate::analysis::{Analysis, analyze, is_hourly, read_span};
use crate::candle::Candle;
use crate::config::Settings;

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

/// Reads the candles of every symbol of `tf` in [now − span, now). A missing table gives no
/// candles (every metric is then skipped for insufficient data); it is never created.
///
/// # Errors
/// [`SourceError`] when a read fails.
pub async fn read_timeframe(
    source: &KlineSource,
    settings: &Settings,
    tf: store::Timeframe,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Vec<Candle>)>, SourceError> {
    let exists = source.table_exists(tf).await?;
    let start = now - read_span(tf, settings.options.window_mode);
    let mut series = Vec::with_capacity(settings.symbols.len());
    for symbol in &settings.symbols {
        let mut candles = Vec::new();
        if exists {
            source
                .scan(tf, symbol, start, now, |k| {
                    candles.push(Candle::from_kline(&k))
                })
                .await?;
        }
        series.push((symbol.clone(), candles));
    }
    Ok(series)
}

/// Reads and analyses every configured timeframe at `now` (correlation on 1h only).
///
/// # Errors
/// [`CycleError`] when a read fails: the cycle fails as a whole and is retried.
pub async fn analyze_all(
    source: &KlineSource,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Vec<Analysis>, CycleError> {
    let mut out = Vec::with_capacity(settings.timeframes.len());
    for &tf in &settings.timeframes {
        let series = read_timeframe(source, settings, tf, now).await?;
        let options = settings.options;
        // The FFT and rolling statistics are CPU work: keep them off the async workers.
        let a = tokio::task::spawn_blocking(move || {
            analyze(&series, tf, now, now, &options, is_hourly(tf))
        })
        .await
        .map_err(|e| CycleError::Task(e.to_string()))?;
        out.push(a);
    }
    Ok(out)
}
