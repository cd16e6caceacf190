//! `dm-auditor once`: one cycle now, without election.

use chrono::{DateTime, SubsecRound, Utc};
use store::mysql_url::MysqlUri;
use store::{Fence, KlineSource, MongoSink, SinkError, SourceError};

use crate::config::{LEASE_NAME, OnceArgs, Settings};
use crate::reads::audit_all;

use crate::dataset::DatasetReport;
use crate::reads::earliest_start;
use crate::write::{WriteError, Written, ensure_indexes, stored_row_keys, write_reports};
use tokio_util::sync::CancellationToken;

/// Why `once` failed.
#[derive(Debug, thiserror::Error)]
pub enum OnceError {
    /// MYSQL_URI does not parse.
    #[error("{0}")]
    Url(#[from] store::mysql_url::MysqlUriError),
    /// Reading failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Writing the reports failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The result of `once`.
#[derive(Debug)]
pub struct OnceResult {
    /// The audit instant.
    pub now: DateTime<Utc>,
    /// Every dataset's report.
    pub reports: Vec<DatasetReport>,
    /// Every trades dataset's report.
    pub trades: Vec<crate::trades::TradesReport>,
    /// What was written (`None` with `--no-write`).
    pub written: Option<Written>,
}

/// Runs one cycle: audits every dataset, then (unless `--no-write`) writes the results under
/// the term given with `--term`.
///
/// # Errors
/// [`OnceError`] when a read or a write fails, or a newer term fenced the write.
pub async fn once(args: &OnceArgs, settings: &Settings) -> Result<OnceResult, OnceError> {
    let now = args.now.unwrap_or_else(Utc::now).trunc_subsecs(0);
    let options = MysqlUri::parse(args.audit.store.mysql_uri.expose())?.to_options();
    let source = KlineSource::connect_lazy(options, settings.db_timeout);
    let never = CancellationToken::new();
    let sink = if args.no_write {
        None
    } else {
        let sink = MongoSink::connect(
            args.audit.store.mongodb_url.expose(),
            "dm-auditor",
            settings.db_timeout,
        )
        .await?;
        ensure_indexes(&sink, settings.health_history_days).await?;
        Some(sink)
    };
    let stored = match &sink {
        Some(sink) => Some(stored_row_keys(sink, earliest_start(settings, now)).await?),
        None => None,
    };
    let reports = audit_all(&source, settings, now, stored.as_ref(), &never).await;
    let trades = match &reports {
        Ok(_) => crate::trades::reads::audit_all(&source, settings, now, &never).await,
        Err(_) => Ok(Vec::new()),
    };
    source.close().await;
    let reports = reports?;
    let trades = trades?;
    let written = if let Some(sink) = sink {
        let fence = Fence::new(LEASE_NAME, args.term, "dm-auditor once");
        let run_id = format!("once-{}", now.timestamp());
        let w = match write_reports(&sink, &fence, &reports, &run_id, now, &never).await {
            Ok(w) => crate::trades::documents::write_reports(
                &sink, &fence, &trades, &run_id, now, &never,
            )
            .await
            .map(|t| w.plus(t)),
            Err(e) => Err(e),
        };
        sink.shutdown().await;
        Some(w?)
    } else {
        None
    };
    Ok(OnceResult {
        now,
        reports,
        trades,
        written,
    })
}

/// The cycle summary line of the current service, kept so log-based alerts keep matching:
/// `Audit cycle complete: audited=<n>, gaps=<n>, duration=<s>s`.
pub fn summary(reports: &[DatasetReport], seconds: f64) -> String {
    let gaps: i64 = reports.iter().map(|r| r.counts.gaps_count).sum();
    format!(
        "Audit cycle complete: audited={}, gaps={gaps}, duration={seconds:.2}s",
        reports.len()
    )
}
