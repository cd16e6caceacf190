//! Volatility: rolling std of returns, Parkinson, Garman–Klass and the volatility of volatility
//! over the 30-day window.

use serde_json::Value;
use store::Timeframe;

use crate::candle::{Candle, closes, newest};
use crate::metric::{
    Kind, Metadata, MetricDoc, Skip, completeness, num_or_null, num_or_zero, object,
};
use crate::options::{Annualization, Options};
use crate::stats::{last_window, mean, pct_change, rolling, sample_std};

/// Fewest candles for a document.
pub const MIN_CANDLES: usize = 20;

/// The computed values (NaN = undefined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Volatility {
    /// std_w(r) at the last row.
    pub rolling_stddev: f64,
    /// rolling_stddev × the annualisation factor.
    pub annualized_volatility: f64,
    /// Parkinson estimator over the last w rows.
    pub parkinson: f64,
    /// Garman–Klass estimator over the last w rows.
    pub garman_klass: f64,
    /// std_w of the rolling std; NaN unless n ≥ 2w.
    pub volatility_of_volatility: f64,
    /// w = min(20, n − 1).
    pub window: usize,
    /// n.
    pub n: usize,
    /// The factor used.
    pub annualization: Annualization,
}

/// √(periods per year) for the option (legacy: √252 for every timeframe).
pub fn annualization_factor(a: Annualization, tf: Timeframe) -> f64 {
    match a {
        Annualization::Legacy => 252f64.sqrt(),
        Annualization::Calendar => (365.0 * 86_400.0 / tf.seconds() as f64).sqrt(),
    }
}

/// Computes the volatility document over `candles` (ascending, the 30-day window).
///
/// # Errors
/// [`Skip::TooFewCandles`] when n < 20.
pub fn compute(candles: &[Candle], tf: Timeframe, options: &Options) -> Result<Volatility, Skip> {
    let n = candles.len();
    if n < MIN_CANDLES {
        return Err(Skip::TooFewCandles);
    }
    let w = 20.min(n - 1);
    let returns = pct_change(&closes(candles), 1);
    let rolling_std = rolling(&returns, w, sample_std);
    let rolling_stddev = rolling_std[n - 1];
    let annualized_volatility = rolling_stddev * annualization_factor(options.annualization, tf);
    let hl: Vec<f64> = candles
        .iter()
        .map(|c| (c.high / c.low).ln().powi(2))
        .collect();
    let parkinson = last_window(&hl, w).map_or(f64::NAN, |win| {
        ((1.0 / (4.0 * 2f64.ln())) * mean(win)).sqrt()
    });
    let gk: Vec<f64> = candles
        .iter()
        .map(|c| {
            0.5 * (c.high.ln() - c.low.ln()).powi(2)
                - (2.0 * 2f64.ln() - 1.0) * (c.close.ln() - c.open.ln()).powi(2)
        })
        .collect();
    let garman_klass = last_window(&gk, w).map_or(f64::NAN, |win| mean(win).sqrt());
    let volatility_of_volatility = if n >= 2 * w {
        rolling(&rolling_std, w, sample_std)[n - 1]
    } else {
        f64::NAN
    };
    Ok(Volatility {
        rolling_stddev,
        annualized_volatility,
        parkinson,
        garman_klass,
        volatility_of_volatility,
        window: w,
        n,
        annualization: options.annualization,
    })
}

fn nonzero_or_null(x: f64) -> Value {
    if x == 0.0 {
        Value::Null
    } else {
        num_or_null(x)
    }
}

impl Volatility {
    /// The document (undefined std → 0; zero or undefined estimators → null).
    pub fn doc(&self, candles: &[Candle], options: &Options) -> Option<MetricDoc> {
        let mut opts = object([("annualization", self.annualization.as_str().into())]);
        options.window_mode_entry(&mut opts);
        Some(MetricDoc {
            kind: Kind::Volatility,
            timestamp: newest(candles)?,
            fields: object([
                ("rolling_stddev", num_or_zero(self.rolling_stddev)),
                (
                    "annualized_volatility",
                    num_or_zero(self.annualized_volatility),
                ),
                ("parkinson", nonzero_or_null(self.parkinson)),
                ("garman_klass", nonzero_or_null(self.garman_klass)),
                (
                    "volatility_of_volatility",
                    num_or_null(self.volatility_of_volatility),
                ),
            ]),
            metadata: Metadata {
                method: "rolling_stddev",
                window: "30d",
                parameters: object([("rolling_window", self.window.into())]),
                completeness: completeness(self.n, 720.0),
                options: opts,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{flat, h1};

    #[test]
    fn nineteen_candles_are_too_few() {
        assert_eq!(
            compute(&flat(19, 100.0), h1(), &Options::default()),
            Err(Skip::TooFewCandles)
        );
    }

    #[test]
    fn twenty_candles_use_a_window_of_nineteen_and_no_vov() {
        let v = compute(&crate::testdata::ramp(20), h1(), &Options::default()).expect("doc");
        assert_eq!(v.window, 19);
        assert!(v.volatility_of_volatility.is_nan());
        assert!(v.rolling_stddev > 0.0);
        let doc = v
            .doc(&crate::testdata::ramp(20), &Options::default())
            .expect("doc");
        assert_eq!(doc.fields["volatility_of_volatility"], Value::Null);
        assert!((doc.metadata.completeness - 20.0 / 7.2).abs() < 1e-12);
    }

    #[test]
    fn flat_prices_give_zero_std_and_null_estimators() {
        let c = flat(40, 100.0);
        let v = compute(&c, h1(), &Options::default()).expect("doc");
        assert_eq!(v.rolling_stddev, 0.0);
        let d = v.doc(&c, &Options::default()).expect("doc");
        assert_eq!(d.fields["rolling_stddev"], Value::from(0.0));
        // flat() has high = low = open = close: ln(H/L) = 0, so both estimators are zero → null.
        assert_eq!(d.fields["parkinson"], Value::Null);
        assert_eq!(d.fields["garman_klass"], Value::Null);
    }

    #[test]
    fn calendar_annualization_uses_hours_per_year() {
        let c = crate::testdata::ramp(30);
        let o = Options {
            annualization: Annualization::Calendar,
            ..Options::default()
        };
        let v = compute(&c, h1(), &o).expect("doc");
        assert!((v.annualized_volatility / v.rolling_stddev - 8760f64.sqrt()).abs() < 1e-9);
        let d = v.doc(&c, &o).expect("doc");
        assert_eq!(d.metadata.options["annualization"], "calendar");
    }
}
