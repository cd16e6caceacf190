//! For arbitrary finite candles no calculator panics, and no NaN or ±∞ reaches a document.

use analytics::analysis::analyze;
use analytics::candle::Candle;
use analytics::options::Options;
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::Value;

fn finite_everywhere(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Array(a) => a.iter().all(finite_everywhere),
        Value::Object(o) => o.values().all(finite_everywhere),
        _ => true,
    }
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(1.0),
        -1e6..1e6f64,
        1e-9..1e-3f64,
        1e3..1e12f64,
    ]
}

fn candles() -> impl Strategy<Value = Vec<Candle>> {
    prop::collection::vec(
        (value(), value(), value(), value(), value(), 0..3i64),
        0..130,
    )
    .prop_map(|rows| {
        let start = Utc
            .with_ymd_and_hms(2025, 10, 1, 0, 0, 0)
            .single()
            .expect("valid");
        let mut t = start;
        rows.into_iter()
            .map(|(o, h, l, c, v, gap)| {
                t += Duration::hours(1 + gap);
                Candle {
                    open_time: t,
                    open: o,
                    high: h,
                    low: l,
                    close: c,
                    volume: v,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_calculator_panics_or_emits_non_finite_numbers(
        a in candles(),
        b in candles(),
        fixed in any::<bool>(),
        returns in any::<bool>(),
        candles_mode in any::<bool>(),
    ) {
        let mut o = Options::default();
        if fixed { o.set("regime_order=fixed").expect("valid"); }
        if returns { o.set("correlation_input=returns").expect("valid"); }
        if candles_mode { o.set("window_mode=candles").expect("valid"); }
        let as_of = Utc.with_ymd_and_hms(2025, 10, 20, 0, 0, 0).single().expect("valid");
        let series = vec![("BTCUSDT".to_owned(), a), ("ETHUSDT".to_owned(), b)];
        for tf in ["1h", "1d"] {
            let a = analyze(&series, tf.parse().expect("tf"), as_of, as_of, &o, true);
            for (_, d) in a.documents(&o) {
                let json = d.to_json(as_of);
                prop_assert!(finite_everywhere(&json), "{json}");
                let c = d.metadata.completeness;
                prop_assert!((0.0..=100.0).contains(&c));
            }
            if let Some(Ok(c)) = &a.correlation {
                prop_assert!(finite_everywhere(&c.matrix_json()));
            }
        }
    }
}
