//! How each finding an audit makes is graded and worded: one builder per kind, pure, so the
//! audit itself only decides *whether* a finding is due.

use chrono::{DateTime, Utc};
use store::{FutureRows, Kline, Undecodable};

use super::Params;
use crate::finding::{Check, Finding, Severity, rfc3339};
use crate::gaps::{Run, instant};

/// A gap longer than this many seconds is `high`, else `medium` (kept from the current service).
const HIGH_GAP_SECONDS: i64 = 3_600;

/// The finding of one run of missing due slots of an `interval`-second grid.
pub(super) fn gap(run: &Run, interval: i64) -> Finding {
    let missing = (run.end - run.start) / interval;
    let duration = missing * interval;
    Finding {
        check: Check::Gap,
        severity: if duration > HIGH_GAP_SECONDS {
            Severity::High
        } else {
            Severity::Medium
        },
        start: Some(instant(run.start)),
        end: Some(instant(run.end)),
        missing_candles: Some(missing),
        duration_seconds: Some(duration),
        details: format!(
            "Gap from {} to {} ({missing} missing candles)",
            rfc3339(instant(run.start)),
            rfc3339(instant(run.end))
        ),
    }
}

/// The `stale` finding when the newest closed candle closed `freshness` seconds ago, more than
/// the allowed lag: `medium` up to twice the lag, `high` beyond. `None` within the lag.
pub(super) fn stale(freshness: i64, max_lag: i64) -> Option<Finding> {
    if freshness <= max_lag {
        return None;
    }
    let severity = if freshness > 2 * max_lag {
        Severity::High
    } else {
        Severity::Medium
    };
    let details = format!("newest closed candle closed {freshness} s ago (allowed {max_lag} s)");
    let mut f = Finding::dataset(Check::Stale, severity, details);
    f.duration_seconds = Some(freshness);
    Some(f)
}

/// The `high` finding for rows that open after the audit instant, dated at the first of them.
pub(super) fn future_rows(future: FutureRows) -> Finding {
    let details = format!(
        "{} rows open after the audit instant, the first at {}",
        future.count,
        rfc3339(future.first)
    );
    let mut f = Finding::dataset(Check::FutureRow, Severity::High, details);
    f.start = Some(future.first);
    f
}

/// The `medium` finding for a symbol with no row in the window of `p`.
pub(super) fn no_data(p: &Params) -> Finding {
    Finding::dataset(
        Check::NoData,
        Severity::Medium,
        format!("no rows in [{}, {})", rfc3339(p.start()), rfc3339(p.now)),
    )
}

/// The `high` finding for a row that did not decode, dated at its `timestamp` when that decoded.
pub(super) fn undecodable(row: &Undecodable) -> Finding {
    let details = format!(
        "row id={} timestamp={}: column {} did not decode ({})",
        row.id.as_deref().unwrap_or("?"),
        row.timestamp.map_or_else(|| "?".to_owned(), rfc3339),
        row.column,
        row.reason
    );
    let mut f = Finding::dataset(Check::UndecodableRow, Severity::High, details);
    f.start = row.timestamp;
    f
}

/// The `medium` finding for an open time stored in `rows` rows (more than one).
pub(super) fn duplicate(open: DateTime<Utc>, rows: i64) -> Finding {
    let details = format!("{rows} rows with open time {}", rfc3339(open));
    let mut f = Finding::dataset(Check::Duplicate, Severity::Medium, details);
    f.start = Some(open);
    f
}

/// The finding of one failed row `check`, dated at the row's open time: `high` for impossible
/// prices and volumes, `medium` for storage defects.
pub(super) fn row(check: Check, row: &Kline) -> Finding {
    let severity = match check {
        Check::OhlcViolation | Check::BadPrice | Check::BadVolume => Severity::High,
        _ => Severity::Medium,
    };
    let mut f = Finding::dataset(
        check,
        severity,
        format!(
            "{} at {}: id={} open={} high={} low={} close={} volume={} close_time={} extracted_at={}",
            check.as_str(),
            rfc3339(row.open_time),
            row.id,
            row.open,
            row.high,
            row.low,
            row.close,
            row.volume,
            rfc3339(row.close_time),
            rfc3339(row.extracted_at),
        ),
    );
    f.start = Some(row.open_time);
    f
}
