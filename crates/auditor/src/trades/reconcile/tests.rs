use chrono::TimeZone;
use store::trades::Trade;

use super::*;

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 21, h, m, s)
        .single()
        .expect("time")
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// now 14:30, 5m reference, L = 900 s, 1 h window: [13:15, 14:15), 12 candles.
fn params() -> TradesParams {
    TradesParams {
        now: at(14, 30, 0),
        window: 3_600,
        reference: "5m".parse().expect("tf"),
        max_lag: 900,
    }
}

fn reference(trades: i64) -> Reference {
    Reference {
        trades,
        volume: d("0.1") * Decimal::from(trades),
        quote_volume: d("10.00000001") * Decimal::from(trades),
    }
}

/// `n` trades in the candle opening at `open`, one per 10 ms, ids from `first_id`.
fn trades(open: DateTime<Utc>, n: i64, first_id: i64) -> Vec<TradeRow> {
    (0..n)
        .map(|k| {
            let ms = open.timestamp_millis() + 10 * k;
            Ok(Trade {
                timestamp: instant(ms.div_euclid(1_000)),
                id_millis: Some(ms),
                trade_id: first_id + k,
                quantity: d("0.1"),
                quote_quantity: d("10.00000001"),
            })
        })
        .collect()
}

fn opens() -> Vec<DateTime<Utc>> {
    (0..12)
        .map(|k| at(13, 15, 0) + Duration::minutes(5 * k))
        .collect()
}

fn audit_with(
    expected: impl Fn(usize) -> i64,
    stored: impl Fn(usize) -> i64,
    probes: &Probes,
) -> TradesReport {
    let mut a = TradesAudit::new(
        "BTCUSDT",
        params(),
        opens()
            .into_iter()
            .enumerate()
            .map(|(k, o)| (o, reference(expected(k)))),
    );
    // Stored trades keep their Binance ids, spread over the candle's `expected` ids.
    let mut id = 1_000;
    for (k, o) in opens().into_iter().enumerate() {
        let (n, e) = (stored(k), expected(k));
        for (j, mut t) in trades(o, n, 0).into_iter().enumerate() {
            if let Ok(t) = &mut t {
                t.trade_id = id + i64::try_from(j).expect("j") * e.max(n) / n.max(1);
            }
            a.push(t);
        }
        id += e.max(n);
    }
    a.finish(probes)
}

fn kinds(r: &TradesReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.check.as_str()).collect()
}

#[test]
fn the_window_is_whole_due_reference_candles() {
    let p = params();
    assert_eq!((p.start(), p.end()), (at(13, 15, 0), at(14, 15, 0)));
    assert_eq!(p.candles(), 12);
    let p = TradesParams {
        now: at(14, 32, 59),
        ..params()
    };
    assert_eq!(p.end(), at(14, 15, 0));
}

#[test]
fn a_complete_table_is_ok_at_100() {
    let r = audit_with(|_| 20, |_| 20, &Probes::default());
    assert_eq!(r.status, TradesStatus::Ok, "{:?}", r.findings);
    assert_eq!(r.completeness, Some(100.0));
    assert_eq!(r.counts.expected_trades, 240);
    assert_eq!(r.counts.stored_trades, 240);
    assert_eq!(r.counts.reference_candles, 12);
    assert!(r.findings.is_empty());
}

#[test]
fn ms_collisions_show_as_missing_share_and_their_own_finding() {
    // Every candle traded 20 times but 7 trades shared a millisecond with an earlier one.
    let r = audit_with(|_| 20, |_| 13, &Probes::default());
    assert_eq!(r.counts.missing_trades, 84);
    assert_eq!(r.counts.short_candles, 12);
    assert_eq!(r.counts.ms_collision_candles, 12);
    assert_eq!(r.completeness, Some(65.0));
    assert_eq!(kinds(&r), ["trades_missing", "trade_ms_collision"]);
    assert_eq!(r.findings[0].severity, Severity::High);
    assert!(
        r.findings[0]
            .details
            .starts_with("84 of 240 trades missing (35.00%)"),
        "{}",
        r.findings[0].details
    );
    assert_eq!(r.status, TradesStatus::Critical);
}

#[test]
fn a_small_missing_share_is_medium() {
    let r = audit_with(
        |_| 100,
        |k| if k == 3 { 99 } else { 100 },
        &Probes::default(),
    );
    assert_eq!(r.counts.missing_trades, 1);
    assert_eq!(r.findings[0].check, Check::TradesMissing);
    assert_eq!(r.findings[0].severity, Severity::Medium);
    assert!(
        r.findings[0]
            .details
            .contains("worst candle 2025-10-21T13:30:00Z: 99 stored of 100")
    );
    assert_eq!(r.status, TradesStatus::Warn);
}

#[test]
fn excess_trades_are_counted_and_do_not_raise_completeness_above_100() {
    let r = audit_with(|_| 10, |k| if k == 0 { 12 } else { 10 }, &Probes::default());
    assert_eq!(r.counts.excess_trades, 2);
    assert_eq!(r.completeness, Some(100.0));
    assert_eq!(kinds(&r), ["trades_excess"]);
}

#[test]
fn volumes_are_compared_exactly_within_one_unit_per_trade() {
    let mut a = TradesAudit::new(
        "BTCUSDT",
        params(),
        [
            (
                at(13, 15, 0),
                Reference {
                    trades: 2,
                    volume: d("0.2"),
                    quote_volume: d("20.00000004"),
                },
            ),
            (
                at(13, 20, 0),
                Reference {
                    trades: 2,
                    volume: d("0.2"),
                    quote_volume: d("20.00000003"),
                },
            ),
        ],
    );
    for t in trades(at(13, 15, 0), 2, 1)
        .into_iter()
        .chain(trades(at(13, 20, 0), 2, 3))
    {
        a.push(t);
    }
    let r = a.finish(&Probes::default());
    // Stored quote sums are 20.00000002: 2e-8 and 1e-8 off, within 2 trades × 1e-8.
    assert_eq!(r.counts.volume_mismatch_candles, 0);
    let mut a = TradesAudit::new(
        "BTCUSDT",
        params(),
        [(
            at(13, 15, 0),
            Reference {
                trades: 2,
                volume: d("0.20000001"),
                quote_volume: d("20.00000002"),
            },
        )],
    );
    for t in trades(at(13, 15, 0), 2, 1) {
        a.push(t);
    }
    let r = a.finish(&Probes::default());
    assert_eq!(
        r.counts.volume_mismatch_candles, 0,
        "1e-8 over two trades is within"
    );
    let mut a = TradesAudit::new(
        "BTCUSDT",
        params(),
        [(
            at(13, 15, 0),
            Reference {
                trades: 2,
                volume: d("0.2000001"),
                quote_volume: d("20.00000002"),
            },
        )],
    );
    for t in trades(at(13, 15, 0), 2, 1) {
        a.push(t);
    }
    let r = a.finish(&Probes::default());
    assert_eq!(r.counts.volume_mismatch_candles, 1);
    assert_eq!(kinds(&r), ["trade_volume_mismatch"]);
    assert!(
        r.findings[0]
            .details
            .contains("quantity 0.2 vs volume 0.2000001"),
        "{}",
        r.findings[0].details
    );
}

#[test]
fn a_clamped_id_in_the_window_or_the_table_is_a_high_finding() {
    let mut a = TradesAudit::new("BTCUSDT", params(), [(at(13, 15, 0), reference(2))]);
    let mut rows = trades(at(13, 15, 0), 2, 7);
    if let Ok(t) = &mut rows[1] {
        t.trade_id = CLAMPED_TRADE_ID;
    }
    rows.into_iter().for_each(|t| a.push(t));
    assert_eq!(
        a.id_range(),
        Some((7, 7)),
        "the clamped id stays out of the range"
    );
    let r = a.finish(&Probes::default());
    assert_eq!(r.counts.clamped_rows, 1);
    assert_eq!(kinds(&r), ["trade_id_clamped"]);
    assert_eq!(r.status, TradesStatus::Critical);

    let r = audit_with(
        |_| 5,
        |_| 5,
        &Probes {
            ids_in_range: None,
            clamped_holder: Some(("ETHUSDT".into(), "ETHUSDT_1".into())),
        },
    );
    assert_eq!(kinds(&r), ["trade_id_clamped"]);
    assert!(
        r.findings[0]
            .details
            .contains("held by ETHUSDT, row ETHUSDT_1")
    );
}

#[test]
fn ids_held_by_other_symbols_inside_our_range_are_collisions() {
    // Stored ids 1000..1060 (60 rows); the range holds 75 rows of any symbol.
    let r = audit_with(
        |_| 5,
        |_| 5,
        &Probes {
            ids_in_range: Some(75),
            clamped_holder: None,
        },
    );
    assert_eq!(r.counts.colliding_ids, 15);
    assert_eq!(kinds(&r), ["trade_id_collision"]);
    assert!(
        r.findings[0]
            .details
            .starts_with("15 trade ids in this symbol's range [1000, 1059]")
    );
    let r = audit_with(
        |_| 5,
        |_| 5,
        &Probes {
            ids_in_range: Some(60),
            clamped_holder: None,
        },
    );
    assert!(r.findings.is_empty());
}

#[test]
fn undecodable_rows_are_counted_not_fatal() {
    let mut a = TradesAudit::new("BTCUSDT", params(), [(at(13, 15, 0), reference(2))]);
    trades(at(13, 15, 0), 2, 1)
        .into_iter()
        .for_each(|t| a.push(t));
    a.push(Err(Undecodable {
        id: Some("BTCUSDT_0".into()),
        column: "timestamp",
    }));
    let r = a.finish(&Probes::default());
    assert_eq!(r.counts.undecodable_rows, 1);
    assert_eq!(r.counts.stored_trades, 2);
    assert_eq!(kinds(&r), ["undecodable_trade"]);
    assert!(
        r.findings[0]
            .details
            .contains("id BTCUSDT_0, column timestamp")
    );
}

#[test]
fn a_trade_rounded_into_the_next_second_stays_in_its_candle() {
    // MySQL stores 13:19:59.700 as 13:20:00; the id keeps the millisecond.
    let ms = at(13, 19, 59).timestamp_millis() + 700;
    let mut a = TradesAudit::new(
        "BTCUSDT",
        params(),
        [(at(13, 15, 0), reference(1)), (at(13, 20, 0), reference(0))],
    );
    a.push(Ok(Trade {
        timestamp: at(13, 20, 0),
        id_millis: Some(ms),
        trade_id: 1,
        quantity: d("0.1"),
        quote_quantity: d("10.00000001"),
    }));
    let r = a.finish(&Probes::default());
    assert_eq!((r.counts.stored_trades, r.counts.excess_trades), (1, 0));
    assert_eq!(r.status, TradesStatus::Ok);
}

#[test]
fn candles_without_reference_are_not_reconciled() {
    let mut a = TradesAudit::new("BTCUSDT", params(), [(at(13, 15, 0), reference(3))]);
    trades(at(13, 15, 0), 3, 1)
        .into_iter()
        .for_each(|t| a.push(t));
    trades(at(13, 25, 0), 4, 10)
        .into_iter()
        .for_each(|t| a.push(t));
    let r = a.finish(&Probes::default());
    assert_eq!(r.counts.reference_candles, 1);
    assert_eq!(r.counts.unreferenced_trades, 4);
    assert_eq!(r.completeness, Some(100.0));

    let a = TradesAudit::new("BTCUSDT", params(), []);
    let r = a.finish(&Probes::default());
    assert_eq!(r.status, TradesStatus::NoReference);
    assert_eq!(r.completeness, None);
}

#[test]
fn no_stored_trade_in_the_window_is_no_data_at_0() {
    let r = audit_with(|_| 20, |_| 0, &Probes::default());
    assert_eq!(r.status, TradesStatus::NoData);
    assert_eq!(r.completeness, Some(0.0));
    assert_eq!(
        r.counts.ms_collision_candles, 0,
        "nothing stored is not a collision"
    );
    assert_eq!(kinds(&r), ["trades_missing"]);
    // A quiet market that traded nothing is fine.
    let r = audit_with(|_| 0, |_| 0, &Probes::default());
    assert_eq!(r.status, TradesStatus::Ok);
    assert_eq!(r.completeness, None);
}

#[test]
fn trades_outside_the_window_are_ignored() {
    let mut a = TradesAudit::new("BTCUSDT", params(), [(at(13, 15, 0), reference(1))]);
    trades(at(14, 15, 0), 5, 1)
        .into_iter()
        .for_each(|t| a.push(t));
    trades(at(13, 10, 0), 5, 1)
        .into_iter()
        .for_each(|t| a.push(t));
    trades(at(13, 15, 0), 1, 9)
        .into_iter()
        .for_each(|t| a.push(t));
    let r = a.finish(&Probes::default());
    assert_eq!(r.counts.stored_trades, 1);
    assert_eq!(r.counts.unreferenced_trades, 0);
    assert_eq!(a_id(&r), "trades_BTCUSDT");
}

fn a_id(r: &TradesReport) -> String {
    r.dataset_id()
}

#[test]
fn informational_reports_carry_one_finding_and_the_error() {
    let r = TradesReport::informational(
        "SOLUSDT",
        params(),
        TradesStatus::NotExtracted,
        "trades has no rows for SOLUSDT".into(),
    );
    assert_eq!(kinds(&r), ["not_extracted"]);
    assert!(!r.audited());
    let r = TradesReport::informational("X", params(), TradesStatus::ReadError, "boom".into());
    assert_eq!(kinds(&r), ["read_error"]);
    assert_eq!(r.findings[0].severity, Severity::Medium);
    assert_eq!(r.error.as_deref(), Some("boom"));
}
