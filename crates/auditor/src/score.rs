//! Scores per dataset (`docs/audit-rules.md`, Scores): the `v3` default and the current
//! service's formulas (`legacy_v1`, `legacy_v2`) for comparison.

use std::str::FromStr;

/// Which formulas compute the scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Completeness over due grid slots, consistency and freshness against each timeframe's own
    /// lag (default).
    #[default]
    V3,
    /// The current service's original formula: row-count completeness, consistency always 100,
    /// freshness from the newest open time (completeness capped at 100 instead of dropping the
    /// result).
    LegacyV1,
    /// The current service's later formula: adds consistency, freshness against 300 s.
    LegacyV2,
}

impl Profile {
    /// The configured name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Profile::V3 => "v3",
            Profile::LegacyV1 => "legacy_v1",
            Profile::LegacyV2 => "legacy_v2",
        }
    }
}

/// An unknown profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a score profile (use v3, legacy_v1 or legacy_v2)")]
pub struct BadProfile(String);

impl FromStr for Profile {
    type Err = BadProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "v3" => Ok(Profile::V3),
            "legacy_v1" => Ok(Profile::LegacyV1),
            "legacy_v2" => Ok(Profile::LegacyV2),
            _ => Err(BadProfile(s.to_owned())),
        }
    }
}

/// What the formulas read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// Due slots: grid slots whose candle has closed and whose lag has passed.
    pub due_slots: i64,
    /// Filled due slots.
    pub filled_slots: i64,
    /// Rows in the window (legacy completeness).
    pub rows_in_window: i64,
    /// ⌊W / I⌋ (legacy expected rows).
    pub legacy_expected: i64,
    /// Gaps found.
    pub gaps: i64,
    /// Distinct duplicated open times.
    pub duplicate_timestamps: i64,
    /// Rows failing a row check.
    pub invalid_rows: i64,
    /// Seconds since the newest closed candle closed, if any.
    pub freshness: Option<f64>,
    /// Seconds since the newest open time in the window (legacy), if any row.
    pub legacy_freshness: Option<f64>,
    /// The window length W in seconds (legacy "no data" freshness).
    pub window: f64,
    /// L, seconds.
    pub max_lag: f64,
}

/// The scores of one dataset, each in 0..=100.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    /// Filled share of the due slots (`None` when nothing is due).
    pub completeness: Option<f64>,
    /// Penalised by gaps, duplicates and invalid rows.
    pub consistency: f64,
    /// 100 within the allowed lag, falling to 0 at twice the lag.
    pub freshness: f64,
    /// The weighted total.
    pub quality: f64,
}

/// Computes the scores of `profile`.
pub fn score(profile: Profile, x: &Inputs) -> Scores {
    let count = |n: i64| n as f64;
    match profile {
        Profile::V3 => {
            let completeness =
                (x.due_slots > 0).then(|| 100.0 * count(x.filled_slots) / count(x.due_slots));
            let consistency = (100.0
                - (10.0 * count(x.gaps)).min(50.0)
                - (5.0 * count(x.duplicate_timestamps)).min(30.0)
                - (5.0 * count(x.invalid_rows)).min(20.0))
            .max(0.0);
            let freshness = match x.freshness {
                None => 0.0,
                Some(f) if f <= x.max_lag => 100.0,
                Some(f) => (100.0 - 100.0 * (f - x.max_lag) / x.max_lag).clamp(0.0, 100.0),
            };
            // Nothing due (e.g. 1d over a 24 h window): weigh what can be measured.
            let quality = match completeness {
                Some(c) => 0.4 * c + 0.4 * consistency + 0.2 * freshness,
                None => (0.4 * consistency + 0.2 * freshness) / 0.6,
            };
            Scores {
                completeness,
                consistency,
                freshness,
                quality,
            }
        }
        Profile::LegacyV1 | Profile::LegacyV2 => {
            let completeness = if x.legacy_expected > 0 {
                (100.0 * count(x.rows_in_window) / count(x.legacy_expected)).min(100.0)
            } else {
                0.0
            };
            let fresh_s = x.legacy_freshness.unwrap_or(x.window);
            if profile == Profile::LegacyV1 {
                let freshness = 100.0 - (fresh_s / 60.0).min(100.0);
                Scores {
                    completeness: Some(completeness),
                    consistency: 100.0,
                    freshness,
                    quality: 0.5 * completeness + 0.3 * 100.0 + 0.2 * freshness,
                }
            } else {
                let consistency = (100.0
                    - (10.0 * count(x.gaps)).min(50.0)
                    - (5.0 * count(x.duplicate_timestamps)).min(30.0))
                .max(0.0);
                let freshness = (100.0 - fresh_s / 300.0 * 100.0).clamp(0.0, 100.0);
                Scores {
                    completeness: Some(completeness),
                    consistency,
                    freshness,
                    quality: 0.4 * completeness + 0.4 * consistency + 0.2 * freshness,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Health vector H1 as the current service sees it: 23 rows, newest open 5400 s ago.
    fn h1_legacy() -> Inputs {
        Inputs {
            due_slots: 21,
            filled_slots: 21,
            rows_in_window: 23,
            legacy_expected: 24,
            gaps: 0,
            duplicate_timestamps: 0,
            invalid_rows: 0,
            freshness: Some(1_800.0),
            legacy_freshness: Some(5_400.0),
            window: 86_400.0,
            max_lag: 7_200.0,
        }
    }

    #[test]
    fn legacy_v1_reproduces_the_current_service() {
        let s = score(Profile::LegacyV1, &h1_legacy());
        assert!(close(
            s.completeness.unwrap_or(f64::NAN),
            95.833_333_333_333_33
        ));
        assert!(close(s.quality, 79.916_666_666_666_67), "{s:?}");
        // No row in the window: completeness 0, freshness term 0 → quality 30.
        let empty = Inputs {
            rows_in_window: 0,
            legacy_freshness: None,
            ..h1_legacy()
        };
        assert!(close(score(Profile::LegacyV1, &empty).quality, 30.0));
        // H3 (25 rows with two duplicates): completeness is capped at 100, not refused.
        let over = Inputs {
            rows_in_window: 25,
            ..h1_legacy()
        };
        assert!(close(
            score(Profile::LegacyV1, &over).completeness.unwrap_or(0.0),
            100.0
        ));
    }

    #[test]
    fn legacy_v2_on_a_full_window_with_one_gap_scores_74_33() {
        let s = score(
            Profile::LegacyV2,
            &Inputs {
                gaps: 1,
                ..h1_legacy()
            },
        );
        assert!(close(s.consistency, 90.0) && close(s.freshness, 0.0));
        assert!(close(s.quality, 74.333_333_333_333_33), "{s:?}");
    }

    #[test]
    fn v3_freshness_score_falls_to_zero_at_twice_the_lag() {
        let at = |f: f64| {
            score(
                Profile::V3,
                &Inputs {
                    freshness: Some(f),
                    ..h1_legacy()
                },
            )
            .freshness
        };
        assert!(close(at(7_200.0), 100.0));
        assert!(close(at(10_800.0), 50.0));
        assert!(close(at(14_400.0), 0.0));
        assert!(close(at(99_999.0), 0.0));
        let none = score(
            Profile::V3,
            &Inputs {
                freshness: None,
                ..h1_legacy()
            },
        );
        assert!(close(none.freshness, 0.0));
    }

    #[test]
    fn v3_penalties_are_capped_per_cause() {
        let s = score(
            Profile::V3,
            &Inputs {
                gaps: 9,
                duplicate_timestamps: 9,
                invalid_rows: 9,
                ..h1_legacy()
            },
        );
        assert!(close(s.consistency, 0.0));
        let s = score(
            Profile::V3,
            &Inputs {
                invalid_rows: 1,
                ..h1_legacy()
            },
        );
        assert!(close(s.consistency, 95.0));
    }

    #[test]
    fn nothing_due_leaves_completeness_null_and_reweighs_quality() {
        let s = score(
            Profile::V3,
            &Inputs {
                due_slots: 0,
                filled_slots: 0,
                ..h1_legacy()
            },
        );
        assert_eq!(s.completeness, None);
        assert!(close(s.quality, 100.0));
    }

    #[test]
    fn profile_names_parse_exactly() {
        assert_eq!("legacy_v2".parse(), Ok(Profile::LegacyV2));
        assert!("V3".parse::<Profile>().is_err());
    }
}
