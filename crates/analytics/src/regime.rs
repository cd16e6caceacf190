//! Regime: threshold classification of the same cycle's volatility, volume and trend results.

use chrono::{DateTime, Utc};

use crate::metric::{Kind, Metadata, MetricDoc, Skip, object};
use crate::options::{Options, RegimeOrder};

/// Annualised volatility above this is high.
pub const HIGH_VOLATILITY: f64 = 0.5;
/// Annualised volatility below this is low.
pub const LOW_VOLATILITY: f64 = 0.2;
/// A volume spike ratio above this is high.
pub const HIGH_VOLUME: f64 = 1.5;
/// A volume spike ratio below this is low.
pub const LOW_VOLUME: f64 = 0.7;
/// A rate of change above this (percent) is bullish, below its negative bearish.
pub const TREND_THRESHOLD: f64 = 2.0;

/// A three-way level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Above the high threshold.
    High,
    /// Between the thresholds.
    Medium,
    /// Below the low threshold.
    Low,
}

impl Level {
    fn of(x: f64, low: f64, high: f64) -> Level {
        if x > high {
            Level::High
        } else if x < low {
            Level::Low
        } else {
            Level::Medium
        }
    }

    /// The stored value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Medium => "medium",
            Level::Low => "low",
        }
    }
}

/// The trend direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// roc > 2.
    Bullish,
    /// roc < −2.
    Bearish,
    /// Otherwise.
    Neutral,
}

impl Direction {
    /// The stored value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Bullish => "bullish",
            Direction::Bearish => "bearish",
            Direction::Neutral => "neutral",
        }
    }
}

/// The classification.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regime {
    /// The regime name.
    pub regime: &'static str,
    /// Its fixed confidence.
    pub confidence: f64,
    /// The volatility level.
    pub volatility_level: Level,
    /// The volume level.
    pub volume_level: Level,
    /// The trend.
    pub trend: Direction,
    /// The row order used.
    pub order: RegimeOrder,
}

/// The inputs: the same cycle's 1h results.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// `annualized_volatility`, if a volatility document exists.
    pub annualized_volatility: Option<f64>,
    /// `volume_spike_ratio`, if a volume document exists.
    pub volume_spike_ratio: Option<f64>,
    /// `rate_of_change`, if a trend document exists (0 otherwise).
    pub rate_of_change: Option<f64>,
}

/// Classifies (the first matching row wins; `fixed` tests rows 5–6 before row 3).
///
/// # Errors
/// [`Skip::MissingInputs`] without volatility or volume.
pub fn classify(inputs: Inputs, order: RegimeOrder) -> Result<Regime, Skip> {
    let (Some(vol), Some(spike)) = (inputs.annualized_volatility, inputs.volume_spike_ratio) else {
        return Err(Skip::MissingInputs);
    };
    let roc = inputs.rate_of_change.unwrap_or(0.0);
    let v = Level::of(vol, LOW_VOLATILITY, HIGH_VOLATILITY);
    let q = Level::of(spike, LOW_VOLUME, HIGH_VOLUME);
    let t = if roc > TREND_THRESHOLD {
        Direction::Bullish
    } else if roc < -TREND_THRESHOLD {
        Direction::Bearish
    } else {
        Direction::Neutral
    };
    use Level::{High, Low, Medium};
    let accel = match (v, q, t) {
        (High, High, Direction::Bullish) => Some(("bullish_acceleration", 0.85)),
        (High, High, Direction::Bearish) => Some(("bearish_acceleration", 0.85)),
        _ => None,
    };
    let (regime, confidence) = match (v, q) {
        (High, Low) => ("turbulent_illiquidity", 0.8),
        (Low, High) => ("stable_accumulation", 0.85),
        (High, High) => match (order, accel) {
            (RegimeOrder::Fixed, Some(a)) => a,
            _ => ("breakout_phase", 0.9),
        },
        (Low, Low) => ("consolidation", 0.75),
        (Medium, Medium) => ("balanced_market", 0.7),
        _ => ("transitional", 0.6),
    };
    Ok(Regime {
        regime,
        confidence,
        volatility_level: v,
        volume_level: q,
        trend: t,
        order,
    })
}

impl Regime {
    /// The document, stamped with the volatility result's timestamp.
    pub fn doc(&self, timestamp: DateTime<Utc>, options: &Options) -> MetricDoc {
        let mut opts = object([
            ("regime_order", self.order.as_str().into()),
            ("annualization", options.annualization.as_str().into()),
        ]);
        options.window_mode_entry(&mut opts);
        MetricDoc {
            kind: Kind::Regime,
            timestamp,
            fields: object([
                ("regime", self.regime.into()),
                ("confidence", self.confidence.into()),
                ("volatility_level", self.volatility_level.as_str().into()),
                ("volume_level", self.volume_level.as_str().into()),
                ("trend", self.trend.as_str().into()),
            ]),
            metadata: Metadata {
                method: "threshold_classification",
                window: "latest",
                parameters: object([
                    ("high_volatility_threshold", HIGH_VOLATILITY.into()),
                    ("low_volatility_threshold", LOW_VOLATILITY.into()),
                    ("high_volume_threshold", HIGH_VOLUME.into()),
                    ("low_volume_threshold", LOW_VOLUME.into()),
                ]),
                completeness: 100.0,
                options: opts,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(vol: f64, spike: f64, roc: Option<f64>, order: RegimeOrder) -> &'static str {
        let i = Inputs {
            annualized_volatility: Some(vol),
            volume_spike_ratio: Some(spike),
            rate_of_change: roc,
        };
        classify(i, order).expect("inputs present").regime
    }

    #[test]
    fn every_reachable_row_of_the_legacy_table() {
        let l = RegimeOrder::Legacy;
        assert_eq!(run(0.6, 0.5, None, l), "turbulent_illiquidity");
        assert_eq!(run(0.1, 2.0, None, l), "stable_accumulation");
        assert_eq!(run(0.6, 2.0, Some(5.0), l), "breakout_phase");
        assert_eq!(run(0.6, 2.0, Some(-5.0), l), "breakout_phase");
        assert_eq!(run(0.1, 0.5, None, l), "consolidation");
        assert_eq!(run(0.3, 1.0, None, l), "balanced_market");
        assert_eq!(run(0.6, 1.0, None, l), "transitional");
    }

    #[test]
    fn fixed_order_reaches_the_acceleration_rows() {
        let f = RegimeOrder::Fixed;
        let i = Inputs {
            annualized_volatility: Some(0.6),
            volume_spike_ratio: Some(2.0),
            rate_of_change: Some(2.5),
        };
        let r = classify(i, f).expect("ok");
        assert_eq!((r.regime, r.confidence), ("bullish_acceleration", 0.85));
        assert_eq!(run(0.6, 2.0, Some(-2.5), f), "bearish_acceleration");
        assert_eq!(run(0.6, 2.0, Some(1.0), f), "breakout_phase");
    }

    #[test]
    fn thresholds_are_strict_and_missing_trend_is_neutral() {
        let i = Inputs {
            annualized_volatility: Some(0.5),
            volume_spike_ratio: Some(0.7),
            rate_of_change: None,
        };
        let r = classify(i, RegimeOrder::Legacy).expect("ok");
        assert_eq!(
            (r.volatility_level, r.volume_level),
            (Level::Medium, Level::Medium)
        );
        assert_eq!(r.trend, Direction::Neutral);
        assert_eq!(r.regime, "balanced_market");
        assert_eq!(
            run(0.6, 2.0, Some(2.0), RegimeOrder::Fixed),
            "breakout_phase"
        );
    }

    #[test]
    fn missing_volatility_or_volume_skips() {
        let i = Inputs {
            annualized_volatility: None,
            volume_spike_ratio: Some(1.0),
            rate_of_change: Some(1.0),
        };
        assert_eq!(classify(i, RegimeOrder::Legacy), Err(Skip::MissingInputs));
    }
}
