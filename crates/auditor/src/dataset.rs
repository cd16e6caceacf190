//! The audit of one dataset (symbol × timeframe) over one window, as a streaming accumulator:
//! rows are pushed in timestamp order and only the current open-time group is held, so memory
//! stays flat however long the window (the rules: `docs/audit-rules.md`). Pure: `now` is a
//! parameter.

use chrono::{DateTime, Duration, Utc};
use std::collections::{HashSet, VecDeque};

use store::{FutureRows, Kline, ScannedRow, Timeframe};

use crate::candles::{CloseStyle, check_row};
use crate::finding::{Check, Finding, Severity};
use crate::gaps::{GapTracker, Grid, Run, leading_rule};
use crate::score::{Inputs, Profile, Scores, score};

/// The settings of one audit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The audit instant; the window is `[now − W, now)`.
    pub now: DateTime<Utc>,
    /// W, seconds.
    pub window: i64,
    /// The timeframe.
    pub timeframe: Timeframe,
    /// τ, seconds.
    pub tolerance: i64,
    /// L, seconds.
    pub max_lag: i64,
    /// Score formulas.
    pub profile: Profile,
    /// Cap on row findings (duplicates included) per dataset per cycle; counts stay exact.
    pub max_row_findings: usize,
}

impl Params {
    /// Window start.
    pub fn start(&self) -> DateTime<Utc> {
        self.now - Duration::seconds(self.window)
    }
}

/// The dataset's status: `ok`, `warn` and `critical` follow the worst finding; the others say why
/// there was nothing (readable) to audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No medium or high finding.
    Ok,
    /// At least one medium finding.
    Warn,
    /// At least one high finding.
    Critical,
    /// The symbol exists but has no row in the window.
    NoData,
    /// The table has no row for the symbol.
    NotExtracted,
    /// The timeframe's table does not exist.
    TableMissing,
    /// The table lacks columns the audit reads.
    SchemaMismatch,
    /// Reading the dataset failed.
    ReadError,
}

impl Status {
    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Critical => "critical",
            Status::NoData => "no_data",
            Status::NotExtracted => "not_extracted",
            Status::TableMissing => "table_missing",
            Status::SchemaMismatch => "schema_mismatch",
            Status::ReadError => "read_error",
        }
    }
}

/// How the window's rows stored close_time, reported as the health document's
/// `close_time_convention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// No row with a recognised style.
    None,
    /// All at open + I.
    Rounded,
    /// All at open + I − 1 s.
    Truncated,
    /// Both.
    Mixed,
}

impl Convention {
    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Convention::None => "none",
            Convention::Rounded => "rounded",
            Convention::Truncated => "truncated",
            Convention::Mixed => "mixed",
        }
    }
}

/// Exact counts of one audit, as written to the health document (never capped like findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Due slots.
    pub due_slots: i64,
    /// Filled due slots.
    pub filled_slots: i64,
    /// Rows read from the window.
    pub rows_in_window: i64,
    /// Unfilled due slots.
    pub missing_candles: i64,
    /// Gap findings.
    pub gaps_count: i64,
    /// Distinct open times stored more than once.
    pub duplicate_timestamps: i64,
    /// Rows − distinct open times.
    pub duplicate_rows: i64,
    /// Rows failing at least one row check (a row counts once however many it fails).
    pub invalid_rows: i64,
}

/// Everything one audit found about one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetReport {
    /// The symbol.
    pub symbol: String,
    /// The timeframe.
    pub timeframe: Timeframe,
    /// The audit settings.
    pub params: Params,
    /// The status.
    pub status: Status,
    /// Counts (zero for informational statuses).
    pub counts: Counts,
    /// Seconds since the newest closed candle closed.
    pub freshness_seconds: Option<i64>,
    /// close_time storage convention.
    pub convention: Convention,
    /// Scores (`None` for informational statuses).
    pub scores: Option<Scores>,
    /// Findings, gaps first, then dataset-level, then row findings by open time.
    pub findings: Vec<Finding>,
    /// Row findings left out by the cap.
    pub row_findings_suppressed: u64,
    /// Whether the audit knew which row findings were already stored (then none of those was
    /// left out by the cap, and every row finding not seen again can be resolved).
    pub stored_keys_known: bool,
}

impl DatasetReport {
    /// The report of a dataset that could not be audited: `table_missing` or `not_extracted`,
    /// with one `info` finding and no scores.
    pub fn informational(symbol: &str, params: Params, status: Status) -> DatasetReport {
        let tf = params.timeframe;
        let (check, details) = match status {
            Status::TableMissing => (
                Check::TableMissing,
                format!("table {} does not exist", tf.table()),
            ),
            _ => (
                Check::NotExtracted,
                format!("{} has no rows for {symbol}", tf.table()),
            ),
        };
        Self::unaudited(
            symbol,
            params,
            status,
            Finding::dataset(check, Severity::Info, details),
        )
    }

    /// The report of a dataset whose table lacks `columns`: status `schema_mismatch`, one
    /// `high` finding naming them, no scores.
    pub fn schema_mismatch(symbol: &str, params: Params, columns: &[&str]) -> DatasetReport {
        let details = format!(
            "{} lacks the columns {}",
            params.timeframe.table(),
            columns.join(", ")
        );
        let f = Finding::dataset(Check::SchemaMismatch, Severity::High, details);
        Self::unaudited(symbol, params, Status::SchemaMismatch, f)
    }

    /// The report of a dataset whose reads failed (`error`, already redacted): status
    /// `read_error`, one `medium` finding, no scores.
    pub fn read_error(symbol: &str, params: Params, error: &str) -> DatasetReport {
        let f = Finding::dataset(Check::ReadError, Severity::Medium, error.to_owned());
        Self::unaudited(symbol, params, Status::ReadError, f)
    }

    fn unaudited(symbol: &str, params: Params, status: Status, finding: Finding) -> DatasetReport {
        let tf = params.timeframe;
        DatasetReport {
            symbol: symbol.to_owned(),
            timeframe: tf,
            params,
            status,
            counts: Counts::default(),
            freshness_seconds: None,
            convention: Convention::None,
            scores: None,
            findings: vec![finding],
            row_findings_suppressed: 0,
            stored_keys_known: false,
        }
    }

    /// `candles_<SYMBOL>_<tf>`, kept for continuity with the current service.
    pub fn dataset_id(&self) -> String {
        format!("candles_{}_{}", self.symbol, self.timeframe)
    }
}

/// The streaming audit of one dataset.
#[derive(Debug)]
pub struct DatasetAudit {
    symbol: String,
    params: Params,
    grid: Grid,
    gaps: GapTracker,
    prev_open: Option<i64>,
    group: Vec<Kline>,
    counts: Counts,
    newest_closed_open: Option<i64>,
    newest_open: Option<i64>,
    rounded: u64,
    truncated: u64,
    /// Row findings whose key is already stored (unresolved): always written, so they stay
    /// current and resolvable.
    row_findings: Vec<Finding>,
    /// New row findings, at most `max_row_findings`, the newest kept.
    fresh: VecDeque<Finding>,
    suppressed: u64,
    future: Option<FutureRows>,
    stored: Option<HashSet<String>>,
}

impl DatasetAudit {
    /// Starts an audit. `prev` is the newest row before the window: it anchors a leading gap and
    /// counts for freshness.
    pub fn new(symbol: &str, params: Params, prev: Option<&Kline>) -> DatasetAudit {
        let i = params.timeframe.seconds();
        let grid = Grid::new(
            params.start().timestamp(),
            params.now.timestamp(),
            i,
            params.tolerance,
            params.max_lag,
        );
        let prev_open = prev.map(|k| k.open_time.timestamp());
        let newest_closed_open = prev_open.filter(|o| o + i <= params.now.timestamp());
        DatasetAudit {
            symbol: symbol.to_owned(),
            params,
            grid,
            gaps: GapTracker::new(grid),
            prev_open,
            group: Vec::new(),
            counts: Counts {
                due_slots: grid.due_slots(),
                ..Counts::default()
            },
            newest_closed_open,
            newest_open: None,
            rounded: 0,
            truncated: 0,
            row_findings: Vec::new(),
            fresh: VecDeque::new(),
            suppressed: 0,
            future: None,
            stored: None,
        }
    }

    /// The keys of this dataset's row findings already stored and not resolved. The row cap
    /// applies only to other (new) keys, so stored findings keep being updated and resolved.
    pub fn with_stored(mut self, keys: HashSet<String>) -> DatasetAudit {
        self.stored = Some(keys);
        self
    }

    /// Adds the next scanned row: a candle, or a row that did not decode (a high
    /// `undecodable_row` finding, counted in `rows_in_window` and `invalid_rows`, and left out
    /// of every other check).
    pub fn push_scanned(&mut self, row: ScannedRow) {
        match row {
            Ok(k) => self.push(k),
            Err(u) => {
                self.counts.rows_in_window += 1;
                self.counts.invalid_rows += 1;
                self.row_finding(findings::undecodable(&u));
            }
        }
    }

    /// Records the rows found opening an interval or more after the audit instant.
    pub fn future_rows(&mut self, future: Option<FutureRows>) {
        self.future = future;
    }

    /// Adds the next row of the window (rows arrive in timestamp order).
    pub fn push(&mut self, row: Kline) {
        if self
            .group
            .first()
            .is_some_and(|g| g.open_time != row.open_time)
        {
            self.flush();
        }
        self.group.push(row);
    }

    fn row_finding(&mut self, f: Finding) {
        let key = f.key(&self.symbol, self.params.timeframe.label());
        if self.stored.as_ref().is_some_and(|s| s.contains(&key)) {
            self.row_findings.push(f);
            return;
        }
        // Rows arrive oldest first: past the cap, the oldest new finding gives way.
        self.fresh.push_back(f);
        if self.fresh.len() > self.params.max_row_findings {
            self.fresh.pop_front();
            self.suppressed += 1;
        }
    }

    /// Checks the rows sharing one open time.
    fn flush(&mut self) {
        let group = std::mem::take(&mut self.group);
        let Some(first) = group.first() else { return };
        let tf = self.params.timeframe;
        let i = tf.seconds();
        let open = first.open_time;
        let open_s = open.timestamp();
        let verdicts: Vec<_> = group
            .iter()
            .map(|k| check_row(k, &self.symbol, tf))
            .collect();
        // The primary key forces the surplus rows of a duplicated open time onto other ids:
        // that is the duplicate finding, not an id mismatch per surplus row.
        let group_has_good_id = group.len() > 1 && verdicts.iter().any(|v| v.id_ok);
        for (row, v) in group.iter().zip(verdicts) {
            let mut failed = v.failed;
            if !v.id_ok && !group_has_good_id {
                failed.push(Check::IdMismatch);
            }
            match v.close {
                CloseStyle::Rounded => self.rounded += 1,
                CloseStyle::Truncated => self.truncated += 1,
                CloseStyle::Other => {}
            }
            if !failed.is_empty() {
                self.counts.invalid_rows += 1;
            }
            for check in failed {
                self.row_finding(findings::row(check, row));
            }
        }
        if let Some(slot) = self.grid.slot_of(open_s) {
            self.gaps.fill(slot);
        }
        if open_s + i <= self.params.now.timestamp() {
            self.newest_closed_open =
                Some(self.newest_closed_open.map_or(open_s, |n| n.max(open_s)));
        }
        self.newest_open = Some(self.newest_open.map_or(open_s, |n| n.max(open_s)));
        let n = i64::try_from(group.len()).unwrap_or(i64::MAX);
        self.counts.rows_in_window += n;
        if n > 1 {
            self.counts.duplicate_timestamps += 1;
            self.counts.duplicate_rows += n - 1;
            self.row_finding(findings::duplicate(open, n));
        }
    }

    /// Finishes the audit: checks the last open-time group, closes the grid, then collects the
    /// findings, scores the dataset and chooses its status.
    pub fn finish(mut self) -> DatasetReport {
        self.flush();
        let runs = self.close_grid();
        let freshness = self.freshness();
        let no_data = self.counts.rows_in_window == 0;
        let findings = self.findings(&runs, freshness, no_data);
        let scores = self.scores(freshness, no_data);
        DatasetReport {
            status: status(no_data, &findings),
            convention: self.convention(),
            symbol: self.symbol,
            timeframe: self.params.timeframe,
            params: self.params,
            counts: self.counts,
            freshness_seconds: freshness,
            scores: Some(scores),
            findings,
            row_findings_suppressed: self.suppressed,
            stored_keys_known: self.stored.is_some(),
        }
    }

    /// Closes the trailing run of the grid, counts filled and missing slots, and returns the
    /// gap runs with the leading-run rule applied (anchored on the row before the window).
    fn close_grid(&mut self) -> Vec<Run> {
        let i = self.params.timeframe.seconds();
        // The tracker is consumed by `finish`; an empty one is left in its place.
        let tracker = std::mem::replace(&mut self.gaps, GapTracker::new(self.grid));
        let (filled, runs) = tracker.finish();
        let prev_slot = self.prev_open.map(|o| o.div_euclid(i) * i);
        let runs = leading_rule(&self.grid, runs, prev_slot);
        self.counts.filled_slots = filled;
        self.counts.missing_candles = self.counts.due_slots - filled;
        self.counts.gaps_count = i64::try_from(runs.len()).unwrap_or(i64::MAX);
        runs
    }

    /// Seconds since the newest closed candle closed, if there is one.
    fn freshness(&self) -> Option<i64> {
        let i = self.params.timeframe.seconds();
        let now = self.params.now.timestamp();
        self.newest_closed_open.map(|o| now - o - i)
    }

    /// Every finding in report order: gaps, stale, rows from the future, no data, then the row
    /// findings by open time (within one row in check order).
    fn findings(&mut self, runs: &[Run], freshness: Option<i64>, no_data: bool) -> Vec<Finding> {
        let p = self.params;
        let i = p.timeframe.seconds();
        let mut out: Vec<Finding> = runs.iter().map(|r| findings::gap(r, i)).collect();
        out.extend(freshness.and_then(|f| findings::stale(f, p.max_lag)));
        out.extend(self.future.map(findings::future_rows));
        if no_data {
            out.push(findings::no_data(&p));
        }
        let mut rows = std::mem::take(&mut self.row_findings);
        rows.extend(self.fresh.drain(..));
        // The sort is stable, so one row's findings keep their check order.
        rows.sort_by_key(|f| f.start);
        out.append(&mut rows);
        out
    }

    /// The scores of the profile; with no row in the window, `v3` completeness and quality are 0.
    fn scores(&self, freshness: Option<i64>, no_data: bool) -> Scores {
        let p = self.params;
        let i = p.timeframe.seconds();
        let now = p.now.timestamp();
        let inputs = Inputs {
            due_slots: self.counts.due_slots,
            filled_slots: self.counts.filled_slots,
            rows_in_window: self.counts.rows_in_window,
            legacy_expected: p.window / i,
            gaps: self.counts.gaps_count,
            duplicate_timestamps: self.counts.duplicate_timestamps,
            invalid_rows: self.counts.invalid_rows,
            freshness: freshness.map(|f| f as f64),
            legacy_freshness: self.newest_open.map(|o| (now - o) as f64),
            window: p.window as f64,
            max_lag: p.max_lag as f64,
        };
        let mut scores = score(p.profile, &inputs);
        if no_data && p.profile == Profile::V3 {
            scores.completeness = Some(0.0);
            scores.quality = 0.0;
        }
        scores
    }

    /// How the window's rows stored close_time.
    fn convention(&self) -> Convention {
        match (self.rounded, self.truncated) {
            (0, 0) => Convention::None,
            (_, 0) => Convention::Rounded,
            (0, _) => Convention::Truncated,
            _ => Convention::Mixed,
        }
    }
}

/// The status of an audited dataset: `no_data` without rows in the window, else the worst
/// finding's severity decides.
fn status(no_data: bool, findings: &[Finding]) -> Status {
    if no_data {
        return Status::NoData;
    }
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::High) => Status::Critical,
        Some(Severity::Medium) => Status::Warn,
        _ => Status::Ok,
    }
}

mod findings;

#[cfg(test)]
mod tests;
