//! The worked examples of `docs/audit-rules.md` as unit tests (the same vectors run on MariaDB in
//! `tests/worked_examples.rs`).

use super::*;
use crate::finding::rfc3339;
use store::testing::{at, candle};

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn params(now: DateTime<Utc>) -> Params {
    Params {
        now,
        window: 86_400,
        timeframe: h1(),
        tolerance: 60,
        max_lag: 7_200,
        profile: Profile::V3,
        max_row_findings: 100,
    }
}

fn run(p: Params, prev: Option<Kline>, rows: Vec<Kline>) -> DatasetReport {
    let mut a = DatasetAudit::new("BTCUSDT", p, prev.as_ref());
    for r in rows {
        a.push(r);
    }
    a.finish()
}

fn hourly(from: DateTime<Utc>, hours: i64) -> Vec<Kline> {
    (0..hours)
        .map(|h| candle("BTCUSDT", h1(), from + Duration::hours(h)))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn kinds(r: &DatasetReport) -> Vec<Check> {
    r.findings.iter().map(|f| f.check).collect()
}

#[test]
fn an_interior_gap_is_found_and_the_unclosed_candle_is_no_gap() {
    let rows: Vec<_> = hourly(at(2025, 10, 21, 1, 0, 0), 23)
        .into_iter()
        .filter(|k| ![5, 6].contains(&chrono::Timelike::hour(&k.open_time)))
        .collect();
    assert_eq!(rows.len(), 21);
    let r = run(params(at(2025, 10, 22, 0, 30, 0)), None, rows);
    assert_eq!(kinds(&r), [Check::Gap]);
    let g = &r.findings[0];
    assert_eq!(g.start, Some(at(2025, 10, 21, 5, 0, 0)));
    assert_eq!(g.end, Some(at(2025, 10, 21, 7, 0, 0)));
    assert_eq!(
        (g.missing_candles, g.duration_seconds),
        (Some(2), Some(7_200))
    );
    assert_eq!(g.severity, Severity::High);
    assert_eq!((r.counts.due_slots, r.counts.filled_slots), (21, 19));
    let s = r.scores.expect("scores");
    assert!(close(s.completeness.expect("due"), 100.0 * 19.0 / 21.0));
    assert!(close(s.consistency, 90.0));
    assert_eq!(r.freshness_seconds, Some(1_800));
    assert!(close(s.freshness, 100.0));
    assert!(close(s.quality, 92.190_476_190_476_19), "{s:?}");
    assert_eq!(r.status, Status::Critical);
}

#[test]
fn zero_lag_makes_23_slots_due_with_the_same_single_gap() {
    let rows: Vec<_> = hourly(at(2025, 10, 21, 1, 0, 0), 23)
        .into_iter()
        .filter(|k| ![5, 6].contains(&chrono::Timelike::hour(&k.open_time)))
        .collect();
    let r = run(
        Params {
            max_lag: 0,
            ..params(at(2025, 10, 22, 0, 30, 0))
        },
        None,
        rows,
    );
    assert_eq!(r.counts.due_slots, 23);
    assert_eq!(kinds(&r).iter().filter(|c| **c == Check::Gap).count(), 1);
    assert_eq!(r.findings[0].missing_candles, Some(2));
}

#[test]
fn a_trailing_outage_is_a_gap_up_to_the_due_horizon_and_stale() {
    let r = run(
        params(at(2025, 10, 22, 0, 30, 0)),
        None,
        hourly(at(2025, 10, 21, 1, 0, 0), 18),
    );
    assert_eq!(kinds(&r), [Check::Gap, Check::Stale]);
    let g = &r.findings[0];
    assert_eq!(
        (g.start, g.end),
        (
            Some(at(2025, 10, 21, 19, 0, 0)),
            Some(at(2025, 10, 21, 22, 0, 0))
        )
    );
    assert_eq!(
        (g.missing_candles, g.duration_seconds, g.severity),
        (Some(3), Some(10_800), Severity::High)
    );
    assert_eq!(r.freshness_seconds, Some(19_800));
    assert_eq!(r.findings[1].severity, Severity::High);
    let s = r.scores.expect("scores");
    assert!(close(s.completeness.expect("due"), 100.0 * 18.0 / 21.0));
    assert!(close(s.consistency, 90.0) && close(s.freshness, 0.0));
    assert!(close(s.quality, 70.285_714_285_714_29), "{s:?}");
    assert_eq!(r.status, Status::Critical);
}

#[test]
fn a_gap_keeps_its_start_in_a_later_cycle() {
    // An hour later the same outage: start unchanged, end and count grow.
    let r = run(
        params(at(2025, 10, 22, 1, 30, 0)),
        Some(candle("BTCUSDT", h1(), at(2025, 10, 21, 1, 0, 0))),
        hourly(at(2025, 10, 21, 2, 0, 0), 17),
    );
    let g = &r.findings[0];
    assert_eq!(
        (g.start, g.end, g.missing_candles),
        (
            Some(at(2025, 10, 21, 19, 0, 0)),
            Some(at(2025, 10, 21, 23, 0, 0)),
            Some(4)
        )
    );
}

fn health_vectors_now() -> DateTime<Utc> {
    at(2025, 10, 21, 14, 30, 0)
}

#[test]
fn a_full_window_is_ok_with_quality_100() {
    let r = run(
        params(health_vectors_now()),
        None,
        hourly(at(2025, 10, 20, 15, 0, 0), 23),
    );
    assert_eq!(r.counts.due_slots, 21);
    let s = r.scores.expect("scores");
    assert_eq!(s.completeness, Some(100.0));
    assert_eq!(r.freshness_seconds, Some(1_800));
    assert!(close(s.consistency, 100.0) && close(s.freshness, 100.0) && close(s.quality, 100.0));
    assert_eq!(r.status, Status::Ok);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.convention, Convention::Truncated);
}

#[test]
fn legacy_v1_on_a_full_window_matches_the_current_service() {
    let r = run(
        Params {
            profile: Profile::LegacyV1,
            ..params(health_vectors_now())
        },
        None,
        hourly(at(2025, 10, 20, 15, 0, 0), 23),
    );
    let s = r.scores.expect("scores");
    assert!(close(s.completeness.expect("c"), 95.833_333_333_333_33));
    assert!(close(s.quality, 79.916_666_666_666_67), "{s:?}");
}

#[test]
fn no_rows_in_the_window_is_no_data_with_a_long_gap_and_stale() {
    let prev = candle("BTCUSDT", h1(), at(2025, 10, 19, 20, 0, 0));
    let r = run(params(health_vectors_now()), Some(prev), vec![]);
    assert_eq!(r.status, Status::NoData);
    let s = r.scores.expect("scores");
    assert_eq!(s.completeness, Some(0.0));
    assert!(close(s.quality, 0.0));
    assert_eq!(kinds(&r), [Check::Gap, Check::Stale, Check::NoData]);
    let g = &r.findings[0];
    assert_eq!(
        (g.start, g.end),
        (
            Some(at(2025, 10, 19, 21, 0, 0)),
            Some(at(2025, 10, 21, 12, 0, 0))
        )
    );
    assert_eq!(
        (g.missing_candles, g.duration_seconds, g.severity),
        (Some(39), Some(140_400), Severity::High)
    );
    assert_eq!(r.freshness_seconds, Some(149_400));
    assert_eq!(r.findings[1].severity, Severity::High);
}

fn full_window_with_two_duplicates() -> Vec<Kline> {
    let mut rows = hourly(at(2025, 10, 20, 15, 0, 0), 23);
    for hour in [10, 11] {
        let mut dup = candle("BTCUSDT", h1(), at(2025, 10, 21, hour, 0, 0));
        dup.id = format!("{}_dup", dup.id); // the primary key forces another id
        rows.push(dup);
    }
    rows.sort_by(|a, b| (a.open_time, &a.id).cmp(&(b.open_time, &b.id)));
    rows
}

#[test]
fn duplicated_open_times_keep_completeness_at_100_and_warn() {
    let r = run(
        params(health_vectors_now()),
        None,
        full_window_with_two_duplicates(),
    );
    let s = r.scores.expect("scores");
    assert_eq!(s.completeness, Some(100.0));
    assert_eq!(
        (r.counts.duplicate_timestamps, r.counts.duplicate_rows),
        (2, 2)
    );
    assert_eq!(
        r.counts.invalid_rows, 0,
        "surplus ids are the duplicate, not id mismatches"
    );
    assert!(
        close(s.consistency, 90.0) && close(s.quality, 96.0),
        "{s:?}"
    );
    assert_eq!(r.status, Status::Warn);
    assert_eq!(kinds(&r), [Check::Duplicate, Check::Duplicate]);
    assert_eq!(r.findings[0].start, Some(at(2025, 10, 21, 10, 0, 0)));
}

#[test]
fn legacy_v1_caps_completeness_above_100_instead_of_storing_nothing() {
    let r = run(
        Params {
            profile: Profile::LegacyV1,
            ..params(health_vectors_now())
        },
        None,
        full_window_with_two_duplicates(),
    );
    assert_eq!(r.scores.expect("scores").completeness, Some(100.0));
}

#[test]
fn series_starting_inside_the_window_has_no_leading_gap() {
    let r = run(
        params(health_vectors_now()),
        None,
        hourly(at(2025, 10, 21, 0, 0, 0), 14),
    );
    assert!(kinds(&r).is_empty(), "{:?}", r.findings);
    assert_eq!((r.counts.due_slots, r.counts.filled_slots), (21, 12));
}

#[test]
fn each_bad_row_counts_once_and_caps_apply_to_findings_only() {
    let mut rows = hourly(at(2025, 10, 20, 15, 0, 0), 23);
    rows[3].open = "0".parse().expect("d");
    rows[3].low = "0".parse().expect("d");
    rows[3].high = "0".parse().expect("d"); // bad_price + ohlc? high 0 < close: both
    rows[4].extracted_at = rows[4].open_time;
    let r = run(
        Params {
            max_row_findings: 2,
            ..params(health_vectors_now())
        },
        None,
        rows,
    );
    assert_eq!(r.counts.invalid_rows, 2);
    // The newest findings are kept: the oldest (row 3's ohlc_violation) gives way.
    assert_eq!(kinds(&r), [Check::BadPrice, Check::PartialCandle]);
    assert_eq!(r.row_findings_suppressed, 1);
    assert_eq!(r.status, Status::Critical);
    assert!(close(r.scores.expect("s").consistency, 90.0));
}

#[test]
fn a_misaligned_row_still_fills_its_slot() {
    let mut rows = hourly(at(2025, 10, 20, 15, 0, 0), 23);
    rows[5] = candle("BTCUSDT", h1(), rows[5].open_time + Duration::seconds(30));
    let r = run(params(health_vectors_now()), None, rows);
    assert_eq!(kinds(&r), [Check::Misaligned]);
    assert_eq!(r.counts.filled_slots, 21);
    assert_eq!(r.status, Status::Warn);
}

#[test]
fn clean_data_yields_no_finding_for_any_check() {
    let r = run(
        params(health_vectors_now()),
        Some(candle("BTCUSDT", h1(), at(2025, 10, 20, 14, 0, 0))),
        hourly(at(2025, 10, 20, 15, 0, 0), 23),
    );
    assert!(r.findings.is_empty());
    assert_eq!(r.counts.invalid_rows, 0);
}

#[test]
fn informational_reports_carry_one_info_finding_and_no_scores() {
    let m1: Timeframe = "1m".parse().expect("1m");
    let r = DatasetReport::informational(
        "SOLUSDT",
        Params {
            timeframe: m1,
            ..params(health_vectors_now())
        },
        Status::TableMissing,
    );
    assert_eq!(kinds(&r), [Check::TableMissing]);
    assert_eq!(r.findings[0].severity, Severity::Info);
    assert_eq!(r.scores, None);
    assert_eq!(
        r.findings[0].key("SOLUSDT", "1m"),
        "SOLUSDT|1m|table_missing"
    );
}

#[test]
fn the_row_cap_keeps_stored_keys_and_the_newest_new_rows() {
    let from = at(2025, 10, 21, 1, 0, 0);
    let mut rows = hourly(from, 6);
    for r in &mut rows {
        r.extracted_at = r.open_time; // partial_candle on every row
    }
    let p = Params {
        max_row_findings: 2,
        ..params(at(2025, 10, 21, 12, 0, 0))
    };
    let stored_key = format!("BTCUSDT|1h|partial_candle|{}", rfc3339(from));
    let mut a =
        DatasetAudit::new("BTCUSDT", p, None).with_stored([stored_key].into_iter().collect());
    for r in rows {
        a.push(r);
    }
    let r = a.finish();
    let partial: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.check == Check::PartialCandle)
        .map(|f| f.start.expect("open time"))
        .collect();
    // The stored oldest row, then the two newest; 01:00 is kept although it is the oldest.
    assert_eq!(
        partial,
        [from, from + Duration::hours(4), from + Duration::hours(5)]
    );
    assert_eq!(r.row_findings_suppressed, 3);
    assert!(r.stored_keys_known);
    assert_eq!(r.counts.invalid_rows, 6, "counts stay exact");
}
