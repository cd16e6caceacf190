//! The reconciliation of one symbol's stored trades against its reference candles, as a
//! streaming accumulator: trades are pushed in scan order and only one small record per
//! candle is kept, so memory depends on the window's candle count, never on its trades.
//! Pure: probes and `now` are parameters.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use store::Timeframe;
use store::trades::{CLAMPED_TRADE_ID, TradeRow, Undecodable};

use crate::finding::{Check, Finding, Severity, rfc3339};
use crate::gaps::instant;

/// From this share of missing trades on, `trades_missing` is `high` (below it, `medium`).
pub const HIGH_MISSING_SHARE: f64 = 0.05;

/// Volume tolerance per stored trade: one unit of the last stored decimal (10⁻⁸). A candle's
/// quote volume is the exact sum of price × quantity, while each stored `quote_quantity` is
/// rounded to 8 decimals, so n trades can honestly differ from it by up to n half-units.
pub const VOLUME_TOLERANCE_PER_TRADE: Decimal = Decimal::from_parts(1, 0, 0, false, 8);

/// The settings of one trades audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradesParams {
    /// The audit instant.
    pub now: DateTime<Utc>,
    /// Window length, seconds; a whole number of reference candles.
    pub window: i64,
    /// The reference klines' timeframe.
    pub reference: Timeframe,
    /// The reference timeframe's allowed extraction lag L, seconds.
    pub max_lag: i64,
}

impl TradesParams {
    /// Window end: the newest candle boundary at or before now − L, so every candle of the
    /// window has closed and is due in the klines table.
    pub fn end(&self) -> DateTime<Utc> {
        let i = self.reference.seconds();
        instant((self.now.timestamp() - self.max_lag).div_euclid(i) * i)
    }

    /// Window start: end − window.
    pub fn start(&self) -> DateTime<Utc> {
        self.end() - Duration::seconds(self.window)
    }

    /// Reference candles in the window.
    pub fn candles(&self) -> usize {
        usize::try_from(self.window / self.reference.seconds()).unwrap_or(0)
    }
}

/// What a reference kline says about its candle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    /// `number_of_trades`.
    pub trades: i64,
    /// `volume`.
    pub volume: Decimal,
    /// `quote_asset_volume`.
    pub quote_volume: Decimal,
}

/// The results of the probes the cycle runs after the scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// Rows of any symbol with a `trade_id` in this symbol's [`TradesAudit::id_range`].
    pub ids_in_range: Option<i64>,
    /// The (symbol, id) of the row holding the clamped trade id, if any (table-wide).
    pub clamped_holder: Option<(String, String)>,
}

/// A trades dataset's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradesStatus {
    /// No medium or high finding.
    Ok,
    /// At least one medium finding.
    Warn,
    /// At least one high finding.
    Critical,
    /// Candles counted trades, but no trade is stored in the window.
    NoData,
    /// No reference candle in the window: nothing to reconcile against.
    NoReference,
    /// `trades` has no row for the symbol.
    NotExtracted,
    /// The `trades` table (or the reference klines table) does not exist.
    TableMissing,
    /// A read failed; this dataset alone is affected.
    ReadError,
}

impl TradesStatus {
    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TradesStatus::Ok => "ok",
            TradesStatus::Warn => "warn",
            TradesStatus::Critical => "critical",
            TradesStatus::NoData => "no_data",
            TradesStatus::NoReference => "no_reference",
            TradesStatus::NotExtracted => "not_extracted",
            TradesStatus::TableMissing => "table_missing",
            TradesStatus::ReadError => "read_error",
        }
    }
}

/// Exact counts of one trades audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TradesCounts {
    /// Candles in the window.
    pub candles: i64,
    /// Candles with a reference kline (the others are not reconciled).
    pub reference_candles: i64,
    /// Σ `number_of_trades` of the reference candles.
    pub expected_trades: i64,
    /// Decoded trades stored in reference candles.
    pub stored_trades: i64,
    /// Σ per candle of min(stored, expected): the trades that count towards completeness.
    pub matched_trades: i64,
    /// Σ per candle of max(0, expected − stored).
    pub missing_trades: i64,
    /// Σ per candle of max(0, stored − expected).
    pub excess_trades: i64,
    /// Trades in candles without a reference kline.
    pub unreferenced_trades: i64,
    /// Rows that did not decode.
    pub undecodable_rows: i64,
    /// Candles with fewer trades stored than counted.
    pub short_candles: i64,
    /// Short candles whose stored trades, each in its own millisecond, skip trade ids: trades
    /// went missing from between stored ones, as the millisecond id drops them.
    pub ms_collision_candles: i64,
    /// Complete candles whose quantities do not add up to the volumes.
    pub volume_mismatch_candles: i64,
    /// This symbol's rows in the window holding the clamped id.
    pub clamped_rows: i64,
    /// Rows of other symbols holding ids inside this symbol's id range.
    pub colliding_ids: i64,
}

/// Everything one trades audit found about one symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct TradesReport {
    /// The symbol.
    pub symbol: String,
    /// The settings.
    pub params: TradesParams,
    /// The status.
    pub status: TradesStatus,
    /// Counts (zero for informational statuses).
    pub counts: TradesCounts,
    /// 100 × matched / expected trades; `None` when nothing was expected or audited.
    pub completeness: Option<f64>,
    /// Findings (all dataset-level).
    pub findings: Vec<Finding>,
    /// The read error, for `read_error` (carries no URL or password).
    pub error: Option<String>,
}

impl TradesReport {
    /// A dataset that could not be audited: `table_missing`, `not_extracted` (with one `info`
    /// finding) or `read_error` (with one `medium` `read_error` finding and the error text).
    pub fn informational(
        symbol: &str,
        params: TradesParams,
        status: TradesStatus,
        details: String,
    ) -> TradesReport {
        let (findings, error) = match status {
            TradesStatus::TableMissing => (
                vec![Finding::dataset(
                    Check::TableMissing,
                    Severity::Info,
                    details,
                )],
                None,
            ),
            TradesStatus::NotExtracted => (
                vec![Finding::dataset(
                    Check::NotExtracted,
                    Severity::Info,
                    details,
                )],
                None,
            ),
            // Like a klines dataset's read error: one `medium` finding, and the text.
            TradesStatus::ReadError => (
                vec![Finding::dataset(
                    Check::ReadError,
                    Severity::Medium,
                    details.clone(),
                )],
                Some(details),
            ),
            _ => (Vec::new(), Some(details)),
        };
        TradesReport {
            symbol: symbol.to_owned(),
            params,
            status,
            counts: TradesCounts::default(),
            completeness: None,
            findings,
            error,
        }
    }

    /// `trades_<SYMBOL>`.
    pub fn dataset_id(&self) -> String {
        format!("trades_{}", self.symbol)
    }

    /// Whether the dataset was audited (so findings not seen again can be resolved).
    pub fn audited(&self) -> bool {
        !matches!(
            self.status,
            TradesStatus::TableMissing | TradesStatus::NotExtracted | TradesStatus::ReadError
        )
    }
}

/// One candle's running totals.
#[derive(Debug, Clone, Default)]
struct Slot {
    reference: Option<Reference>,
    stored: i64,
    distinct_ms: i64,
    without_ms: i64,
    last_ms: Option<i64>,
    ids: Option<(i64, i64)>,
    unclamped: i64,
    quantity: Decimal,
    quote: Decimal,
}

/// The streaming reconciliation of one symbol's trades.
#[derive(Debug)]
pub struct TradesAudit {
    symbol: String,
    params: TradesParams,
    start_ms: i64,
    slot_ms: i64,
    slots: Vec<Slot>,
    undecodable: i64,
    first_undecodable: Option<Undecodable>,
    clamped_rows: i64,
    id_range: Option<(i64, i64)>,
    unclamped: i64,
}

impl TradesAudit {
    /// Starts an audit from the reference candles (open time, reference); candles off the
    /// grid or outside the window are ignored.
    pub fn new(
        symbol: &str,
        params: TradesParams,
        candles: impl IntoIterator<Item = (DateTime<Utc>, Reference)>,
    ) -> TradesAudit {
        let slot_ms = params.reference.seconds() * 1_000;
        let start_ms = params.start().timestamp() * 1_000;
        let mut slots = vec![Slot::default(); params.candles()];
        for (open, r) in candles {
            let off = open.timestamp_millis() - start_ms;
            if off.rem_euclid(slot_ms) == 0
                && let Some(s) = usize::try_from(off / slot_ms)
                    .ok()
                    .and_then(|k| slots.get_mut(k))
            {
                s.reference = Some(r);
            }
        }
        TradesAudit {
            symbol: symbol.to_owned(),
            params,
            start_ms,
            slot_ms,
            slots,
            undecodable: 0,
            first_undecodable: None,
            clamped_rows: 0,
            id_range: None,
            unclamped: 0,
        }
    }

    /// Adds the next scanned row. A trade belongs to the candle of its id's millisecond
    /// (MySQL rounds the DATETIME to the nearest second, which can move it across a
    /// boundary); the DATETIME is used only when the id carries no plausible millisecond.
    pub fn push(&mut self, row: TradeRow) {
        let t = match row {
            Ok(t) => t,
            Err(u) => {
                self.undecodable += 1;
                self.first_undecodable.get_or_insert(u);
                return;
            }
        };
        let second_ms = t.timestamp.timestamp() * 1_000;
        let ms = t.id_millis.filter(|m| (m - second_ms).abs() <= 1_000);
        let off = ms.unwrap_or(second_ms) - self.start_ms;
        let Some(slot) = usize::try_from(off.div_euclid(self.slot_ms))
            .ok()
            .filter(|_| off >= 0)
            .and_then(|k| self.slots.get_mut(k))
        else {
            return;
        };
        slot.stored += 1;
        slot.quantity = slot.quantity.saturating_add(t.quantity);
        slot.quote = slot.quote.saturating_add(t.quote_quantity);
        match ms {
            Some(m) if slot.last_ms != Some(m) => {
                slot.distinct_ms += 1;
                slot.last_ms = Some(m);
            }
            Some(_) => {}
            None => slot.without_ms += 1,
        }
        if t.trade_id == CLAMPED_TRADE_ID {
            self.clamped_rows += 1;
        } else {
            slot.unclamped += 1;
            let (lo, hi) = slot.ids.unwrap_or((t.trade_id, t.trade_id));
            slot.ids = Some((lo.min(t.trade_id), hi.max(t.trade_id)));
            self.unclamped += 1;
            let (lo, hi) = self.id_range.unwrap_or((t.trade_id, t.trade_id));
            self.id_range = Some((lo.min(t.trade_id), hi.max(t.trade_id)));
        }
    }

    /// The smallest and largest unclamped trade id stored in the window, for the collision
    /// probe.
    pub fn id_range(&self) -> Option<(i64, i64)> {
        self.id_range
    }

    /// Finishes the audit with the probes' results.
    pub fn finish(self, probes: &Probes) -> TradesReport {
        let mut c = TradesCounts {
            candles: i64::try_from(self.slots.len()).unwrap_or(i64::MAX),
            undecodable_rows: self.undecodable,
            clamped_rows: self.clamped_rows,
            colliding_ids: probes
                .ids_in_range
                .map_or(0, |n| (n - self.unclamped).max(0)),
            ..TradesCounts::default()
        };
        let mut worst: Option<(f64, usize, i64, i64)> = None;
        let mut first_mismatch: Option<String> = None;
        for (k, s) in self.slots.iter().enumerate() {
            let Some(r) = s.reference else {
                c.unreferenced_trades += s.stored;
                continue;
            };
            c.reference_candles += 1;
            c.expected_trades += r.trades;
            c.stored_trades += s.stored;
            c.matched_trades += s.stored.min(r.trades);
            c.missing_trades += (r.trades - s.stored).max(0);
            c.excess_trades += (s.stored - r.trades).max(0);
            if s.stored < r.trades {
                c.short_candles += 1;
                if s.without_ms == 0 && s.distinct_ms == s.stored && s.skipped_ids() > 0 {
                    c.ms_collision_candles += 1;
                }
                let share = (r.trades - s.stored) as f64 / r.trades as f64;
                if worst.is_none_or(|w| share > w.0) {
                    worst = Some((share, k, s.stored, r.trades));
                }
            }
            if s.stored == r.trades && s.stored > 0 && !volumes_match(s, &r) {
                c.volume_mismatch_candles += 1;
                first_mismatch.get_or_insert_with(|| {
                    format!(
                        "{}: quantity {} vs volume {}, quote {} vs {}",
                        rfc3339(self.open(k)),
                        s.quantity,
                        r.volume,
                        s.quote,
                        r.quote_volume
                    )
                });
            }
        }
        let worst = worst.map(|(_, k, stored, expected)| (self.open(k), stored, expected));
        let findings = findings(
            &c,
            worst,
            first_mismatch,
            self.first_undecodable.as_ref(),
            probes,
            self.id_range,
        );
        let completeness = (c.expected_trades > 0)
            .then(|| 100.0 * c.matched_trades as f64 / c.expected_trades as f64);
        let status = if c.reference_candles == 0 {
            TradesStatus::NoReference
        } else if c.stored_trades + c.unreferenced_trades == 0 && c.expected_trades > 0 {
            TradesStatus::NoData
        } else {
            match findings.iter().map(|f| f.severity).max() {
                Some(Severity::High) => TradesStatus::Critical,
                Some(Severity::Medium) => TradesStatus::Warn,
                _ => TradesStatus::Ok,
            }
        };
        TradesReport {
            symbol: self.symbol,
            params: self.params,
            status,
            counts: c,
            completeness,
            findings,
            error: None,
        }
    }

    fn open(&self, k: usize) -> DateTime<Utc> {
        let k = i64::try_from(k).unwrap_or(0);
        instant((self.start_ms + k * self.slot_ms) / 1_000)
    }
}

impl Slot {
    /// Trade ids skipped between the candle's lowest and highest stored id: trades that
    /// happened among the stored ones but were not kept.
    fn skipped_ids(&self) -> i64 {
        self.ids
            .map_or(0, |(lo, hi)| (hi - lo + 1 - self.unclamped).max(0))
    }
}

/// Whether a complete candle's summed quantities equal its volumes within the tolerance.
fn volumes_match(s: &Slot, r: &Reference) -> bool {
    let tol = VOLUME_TOLERANCE_PER_TRADE * Decimal::from(s.stored);
    (s.quantity - r.volume).abs() <= tol && (s.quote - r.quote_volume).abs() <= tol
}

/// Trades missing from the candles' counts: high once their share reaches
/// `HIGH_MISSING_SHARE`, with the worst candle named.
fn missing_finding(c: &TradesCounts, worst: Option<(DateTime<Utc>, i64, i64)>) -> Option<Finding> {
    if c.missing_trades <= 0 {
        return None;
    }
    let share = c.missing_trades as f64 / c.expected_trades as f64;
    let mut details = format!(
        "{} of {} trades missing ({:.2}%) in {} of {} candles",
        c.missing_trades,
        c.expected_trades,
        100.0 * share,
        c.short_candles,
        c.reference_candles
    );
    if let Some((open, stored, expected)) = worst {
        details.push_str(&format!(
            "; worst candle {}: {stored} stored of {expected}",
            rfc3339(open)
        ));
    }
    let severity = if share >= HIGH_MISSING_SHARE {
        Severity::High
    } else {
        Severity::Medium
    };
    Some(Finding::dataset(Check::TradesMissing, severity, details))
}

/// The findings a finished audit shows, in a fixed order.
fn findings(
    c: &TradesCounts,
    worst: Option<(DateTime<Utc>, i64, i64)>,
    first_mismatch: Option<String>,
    undecodable: Option<&Undecodable>,
    probes: &Probes,
    id_range: Option<(i64, i64)>,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = missing_finding(c, worst).into_iter().collect();
    if c.excess_trades > 0 {
        out.push(Finding::dataset(
            Check::TradesExcess,
            Severity::Medium,
            format!(
                "{} more trades stored than the candles counted",
                c.excess_trades
            ),
        ));
    }
    if let Some(first) = first_mismatch {
        out.push(Finding::dataset(
            Check::TradeVolumeMismatch,
            Severity::Medium,
            format!(
                "{} complete candles whose trades do not add up to their volumes \
                 (tolerance 1e-8 per trade); first {first}",
                c.volume_mismatch_candles
            ),
        ));
    }
    if c.ms_collision_candles > 0 {
        out.push(Finding::dataset(
            Check::TradeMsCollision,
            Severity::Medium,
            format!(
                "{} candles lost trades from between stored ones although every stored trade \
                 has its own millisecond: the id <symbol>_<ms> keeps one trade per millisecond \
                 and drops the rest",
                c.ms_collision_candles
            ),
        ));
    }
    if c.clamped_rows > 0 || probes.clamped_holder.is_some() {
        let holder = probes
            .clamped_holder
            .as_ref()
            .map_or_else(String::new, |(s, id)| format!(" (held by {s}, row {id})"));
        out.push(Finding::dataset(
            Check::TradeIdClamped,
            Severity::High,
            format!(
                "trade_id 2147483647 is stored{holder}: ids above 2^31 - 1 clamp to it and \
                 the unique index keeps one such trade for the whole table"
            ),
        ));
    }
    if c.colliding_ids > 0 {
        let (lo, hi) = id_range.unwrap_or_default();
        out.push(Finding::dataset(
            Check::TradeIdCollision,
            Severity::High,
            format!(
                "{} trade ids in this symbol's range [{lo}, {hi}] are held by other symbols: \
                 trade_id is unique across symbols, so each blocks a trade here",
                c.colliding_ids
            ),
        ));
    }
    if let Some(u) = undecodable {
        out.push(Finding::dataset(
            Check::UndecodableTrade,
            Severity::High,
            format!(
                "{} rows do not decode; first: id {}, column {}",
                c.undecodable_rows,
                u.id.as_deref().unwrap_or("?"),
                u.column
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
