//! The golden Series A/B through every calculator: the published volatility and volume numbers to
//! 1e-9 relative, and the others' defining properties.

use analytics::analysis::analyze;
use analytics::golden::{series_a, series_b, start};
use analytics::metric::{Kind, Skip};
use analytics::options::Options;
use analytics::{correlation, deviation, regime, seasonality, trend, volatility, volume};
use chrono::Duration;
use store::Timeframe;

fn h1() -> Timeframe {
    "1h".parse().expect("1h")
}

fn assert_rel(actual: f64, expected: f64, what: &str) {
    let rel = ((actual - expected) / expected).abs();
    assert!(rel <= 1e-9, "{what}: {actual} vs {expected} (rel {rel:e})");
}

#[test]
fn series_a_volatility_matches_the_published_numbers() {
    let a = series_a(720);
    let v = volatility::compute(&a, h1(), &Options::default()).expect("720 rows");
    assert_rel(v.rolling_stddev, 0.006272639780820264, "rolling_stddev");
    assert_rel(v.annualized_volatility, 0.09957506954364673, "annualized");
    assert_rel(v.parkinson, 0.009397256386673486, "parkinson");
    assert_rel(v.garman_klass, 0.010052938717483457, "garman_klass");
    assert_rel(v.volatility_of_volatility, 0.0014256485665722738, "vov");
    assert_eq!(v.window, 20);
    let d = v.doc(&a, &Options::default()).expect("doc");
    assert_eq!(d.metadata.completeness, 100.0);
    assert_eq!(d.timestamp, start() + Duration::hours(719));
    assert_eq!(d.metadata.options["annualization"], "legacy");
}

#[test]
fn series_a_volume_over_the_last_24_rows_matches_the_published_numbers() {
    let a = series_a(720);
    let v = volume::compute(&a[696..]).expect("24 rows");
    assert_eq!(v.total_volume, 64860.0);
    assert_rel(v.volume_sma, 2756.5, "sma");
    assert_rel(v.volume_ema, 2821.007921102365, "ema");
    assert_rel(v.volume_spike_ratio, 3013.0 / 2702.5, "spike");
    assert_rel(v.volume_spike_ratio, 1.1148936170212767, "spike");
    assert_eq!(v.window, 20);
    let d = v.doc(&a[696..], &Options::default()).expect("doc");
    assert_eq!(d.fields["volume_delta"], 0.0);
}

#[test]
fn analysis_of_series_a_reproduces_the_calculators_through_its_windows() {
    let as_of = start() + Duration::hours(720);
    let series = vec![
        ("BTCUSDT".to_owned(), series_a(720)),
        ("ETHUSDT".to_owned(), series_b(720)),
    ];
    let a = analyze(&series, h1(), as_of, as_of, &Options::default(), true);
    let btc = &a.symbols[0].metrics;
    let vol = btc[&Kind::Volatility].as_ref().expect("volatility");
    assert_rel(
        vol.fields["rolling_stddev"].as_f64().expect("f64"),
        0.006272639780820264,
        "rolling_stddev via analyze",
    );
    let volu = btc[&Kind::Volume].as_ref().expect("volume");
    assert_rel(
        volu.fields["volume_ema"].as_f64().expect("f64"),
        2821.007921102365,
        "ema via analyze",
    );
    for k in [
        Kind::Trend,
        Kind::Deviation,
        Kind::Seasonality,
        Kind::Regime,
    ] {
        assert!(btc[&k].is_ok(), "{k:?}");
    }
    let c = a
        .correlation
        .clone()
        .expect("requested")
        .expect("two symbols");
    assert_eq!(c.benchmark, "BTCUSDT");
    assert_eq!(a.skipped().len(), 0);
}

#[test]
fn series_a_trend_deviation_and_seasonality_follow_their_definitions() {
    let a = series_a(720);
    let closes: Vec<f64> = a.iter().map(|c| c.close).collect();
    let n = closes.len();
    let t = trend::compute(&a).expect("trend");
    let sma20: f64 = closes[n - 20..].iter().sum::<f64>() / 20.0;
    assert_rel(t.sma, sma20, "sma");
    assert_rel(
        t.rate_of_change,
        (closes[n - 1] / closes[n - 11] - 1.0) * 100.0,
        "roc",
    );
    let up = a[n - 20..].iter().filter(|c| c.close > c.open).count();
    assert_eq!(t.directional_strength, 5.0 * up as f64);

    let d = deviation::compute(&a).expect("deviation");
    assert_rel(
        d.bollinger_upper - d.bollinger_lower,
        4.0 * d.standard_deviation,
        "band width",
    );
    assert_rel(d.variance, d.standard_deviation.powi(2), "var = std²");
    assert!(
        d.autocorrelation > 0.9,
        "a smooth sine is strongly autocorrelated"
    );
    assert!((0.0..=1.0).contains(&d.price_range_index));

    let now = start() + Duration::hours(720);
    let s = seasonality::compute(&a, now, &Options::default()).expect("seasonality");
    // The 0.1·i drift (72 over the window) outweighs the sine (amplitude 10) in the spectrum:
    // bin 1 is the strongest, so the cycle is the whole window, trunc(1 / (1 · (1/720))) = 720.
    assert_eq!(s.dominant_cycle, Some(720));
    let detrended: Vec<f64> = (0..720)
        .map(|i| 10.0 * (f64::from(i) / 5.0).sin())
        .collect();
    // Without the drift the sine's period 10π ≈ 31.4 h wins: bin 23, 720/23 → 31.
    assert_eq!(analytics::stats::dominant_cycle(&detrended), Some(31));
    assert!(s.entropy_index > 0.0 && s.entropy_index <= 50f64.ln());
    assert_eq!(s.hour, 0);
}

#[test]
fn series_a_and_b_correlation_is_symmetric_with_btc_as_benchmark() {
    let series = vec![
        ("ETHUSDT".to_owned(), series_b(720)),
        ("BTCUSDT".to_owned(), series_a(720)),
    ];
    let c = correlation::compute(&series, &Options::default()).expect("two symbols");
    assert_eq!(c.benchmark, "BTCUSDT");
    assert_eq!(c.matrix[0][1], c.matrix[1][0]);
    assert!((c.matrix[0][0] - 1.0).abs() < 1e-12);
    let eth = &c.per_symbol[0];
    let lag = eth.cross_correlation_lag.expect("lag");
    assert!((-360..360).contains(&lag));
    assert!(eth.volatility_correlation.is_finite());
}

#[test]
fn daily_trend_and_volume_never_run_in_time_mode() {
    let d1: Timeframe = "1d".parse().expect("1d");
    let days: Vec<_> = series_a(60)
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c.open_time = start() + Duration::days(i as i64);
            c
        })
        .collect();
    let as_of = start() + Duration::days(60);
    let series = vec![("BTCUSDT".to_owned(), days)];
    let a = analyze(&series, d1, as_of, as_of, &Options::default(), false);
    let m = &a.symbols[0].metrics;
    assert_eq!(m[&Kind::Volume], Err(Skip::TooFewCandles));
    assert_eq!(m[&Kind::Trend], Err(Skip::TooFewCandles));
    let v = m[&Kind::Volatility].as_ref().expect("30 daily candles");
    assert!((v.metadata.completeness - 30.0 / 7.2).abs() < 1e-12);
    let mut o = Options::default();
    o.set("window_mode=candles").expect("valid");
    let a = analyze(&series, d1, as_of, as_of, &o, false);
    let m = &a.symbols[0].metrics;
    assert!(m[&Kind::Volume].is_ok() && m[&Kind::Trend].is_ok());
    assert_eq!(
        m[&Kind::Trend].as_ref().expect("trend").metadata.options["window_mode"],
        "candles"
    );
}

#[test]
fn regime_from_series_a_is_transitional() {
    let a = series_a(720);
    let v = volatility::compute(&a, h1(), &Options::default()).expect("vol");
    let q = volume::compute(&a[696..]).expect("volume");
    let t = trend::compute(&a).expect("trend");
    let r = regime::classify(
        regime::Inputs {
            annualized_volatility: Some(v.annualized_volatility),
            volume_spike_ratio: Some(q.volume_spike_ratio),
            rate_of_change: Some(t.rate_of_change),
        },
        Default::default(),
    )
    .expect("inputs");
    assert_eq!(
        (
            r.regime,
            r.volatility_level.as_str(),
            r.volume_level.as_str()
        ),
        ("transitional", "low", "medium")
    );
}
