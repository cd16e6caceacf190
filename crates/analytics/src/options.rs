//! The named options: every improvement over parity (the old service's numbers) is one of these,
//! off by default, and recorded in the documents' `metadata.options`.

use std::fmt;
use std::str::FromStr;

/// A value that is not one of an option's choices, or an unknown option name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: `{value}` is not one of {choices}")]
pub struct BadOption {
    /// The option (environment variable name).
    pub option: &'static str,
    /// The rejected value.
    pub value: String,
    /// The accepted values.
    pub choices: &'static str,
}

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident, $var:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// The environment variable.
            pub const VAR: &'static str = $var;

            /// The value as written in the environment and in `metadata.options`.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl FromStr for $name {
            type Err = BadOption;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(BadOption {
                        option: $var,
                        value: s.to_owned(),
                        choices: concat!($($text, " "),+),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(
    /// How volatility is annualised.
    Annualization, "ANALYTICS_ANNUALIZATION", {
        /// √252 for every timeframe (parity).
        #[default]
        Legacy = "legacy",
        /// √(periods per year) of a 24/7 market: √8760 for 1h, √365 for 1d.
        Calendar = "calendar",
    }
);

choice!(
    /// What the correlation metrics correlate.
    CorrelationInput, "ANALYTICS_CORRELATION_INPUT", {
        /// Close levels (parity).
        #[default]
        Prices = "prices",
        /// pct_change(1) of close; the lag on demeaned returns.
        Returns = "returns",
    }
);

choice!(
    /// How much history each metric reads.
    WindowMode, "ANALYTICS_WINDOW_MODE", {
        /// Fixed time windows per metric (parity): 1d trend and volume never have enough candles.
        #[default]
        Time = "time",
        /// At least the metric's minimum number of candles, reaching back as far as needed.
        Candles = "candles",
    }
);

choice!(
    /// Which hour seasonal deviation compares against.
    SeasonalHour, "ANALYTICS_SEASONAL_HOUR", {
        /// The current wall-clock UTC hour (parity).
        #[default]
        WallClock = "wall_clock",
        /// The open hour of the newest candle.
        LastCandle = "last_candle",
    }
);

choice!(
    /// The order of the regime table's rows.
    RegimeOrder, "ANALYTICS_REGIME_ORDER", {
        /// Rows 1–8 as listed (parity; rows 5–6 unreachable).
        #[default]
        Legacy = "legacy",
        /// Rows 5–6 tested before row 3.
        Fixed = "fixed",
    }
);

choice!(
    /// Where spread reads order books.
    SpreadSource, "ANALYTICS_SPREAD_SOURCE", {
        /// Spread is disabled: nothing writes order books yet.
        #[default]
        None = "none",
    }
);

/// Every option, defaults = parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// `ANALYTICS_ANNUALIZATION`.
    pub annualization: Annualization,
    /// `ANALYTICS_CORRELATION_INPUT`.
    pub correlation_input: CorrelationInput,
    /// `ANALYTICS_WINDOW_MODE`.
    pub window_mode: WindowMode,
    /// `ANALYTICS_SEASONAL_HOUR`.
    pub seasonal_hour: SeasonalHour,
    /// `ANALYTICS_REGIME_ORDER`.
    pub regime_order: RegimeOrder,
    /// `ANALYTICS_SPREAD_SOURCE`.
    pub spread_source: SpreadSource,
}

impl Options {
    /// Sets one option from `NAME=VALUE`, where NAME is the variable (`ANALYTICS_REGIME_ORDER`)
    /// or its short form (`regime_order`), in any case.
    ///
    /// # Errors
    /// [`BadOption`] for an unknown name or value.
    pub fn set(&mut self, assignment: &str) -> Result<(), BadOption> {
        let (name, value) = assignment.split_once('=').ok_or_else(|| BadOption {
            option: "--option",
            value: assignment.to_owned(),
            choices: "NAME=VALUE",
        })?;
        let name = name.trim().to_ascii_lowercase();
        let short = name.strip_prefix("analytics_").unwrap_or(&name);
        match short {
            "annualization" => self.annualization = value.parse()?,
            "correlation_input" => self.correlation_input = value.parse()?,
            "window_mode" => self.window_mode = value.parse()?,
            "seasonal_hour" => self.seasonal_hour = value.parse()?,
            "regime_order" => self.regime_order = value.parse()?,
            "spread_source" => self.spread_source = value.parse()?,
            _ => {
                return Err(BadOption {
                    option: "--option",
                    value: name.clone(),
                    choices: "annualization correlation_input window_mode seasonal_hour regime_order spread_source",
                });
            }
        }
        Ok(())
    }

    /// `window_mode` entry for `metadata.options` when it is not the parity default.
    pub(crate) fn window_mode_entry(&self, map: &mut serde_json::Map<String, serde_json::Value>) {
        if self.window_mode != WindowMode::Time {
            map.insert("window_mode".into(), self.window_mode.as_str().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_parity() {
        let o = Options::default();
        assert_eq!(o.annualization.as_str(), "legacy");
        assert_eq!(o.correlation_input.as_str(), "prices");
        assert_eq!(o.window_mode.as_str(), "time");
        assert_eq!(o.seasonal_hour.as_str(), "wall_clock");
        assert_eq!(o.regime_order.as_str(), "legacy");
        assert_eq!(o.spread_source.as_str(), "none");
    }

    #[test]
    fn assignments_accept_variable_or_short_names() {
        let mut o = Options::default();
        o.set("ANALYTICS_REGIME_ORDER=fixed").expect("valid");
        o.set("annualization=Calendar").expect("valid");
        assert_eq!(o.regime_order, RegimeOrder::Fixed);
        assert_eq!(o.annualization, Annualization::Calendar);
        let e = o.set("regime_order=sideways").expect_err("bad value");
        assert_eq!(e.option, "ANALYTICS_REGIME_ORDER");
        assert!(o.set("colour=blue").is_err());
        assert!(o.set("regime_order").is_err());
    }
}
