//! The audit of the extractor's `trades` table against its klines: one dataset per symbol
//! (`trades_<SYMBOL>`, timeframe label `trades`), reconciled candle by candle with the
//! reference klines' `number_of_trades`, `volume` and `quote_asset_volume`.
//!
//! - [`reconcile`]: the per-candle reconciliation and its findings (pure, streaming).
//! - [`reads`]: one cycle's reads (the reference candles, the trades scan, two probes).
//! - [`documents`]: the Mongo documents, written through the same fenced sink as the klines.
//! - [`metrics`]: the trades datasets' findings and completeness in the auditor's gauges.
//! - [`output`]: the `trades` entries of `once --json`.

pub mod documents;
pub mod metrics;
pub mod output;
pub mod reads;
pub mod reconcile;

use runtime::config::{ConfigError, Flag, Seconds, invalid};
use store::Timeframe;

pub use reconcile::{TradesReport, TradesStatus};

/// Longest trades window: one reference candle record per candle is kept, so this bounds the
/// audit's memory whatever the table holds.
pub const MAX_WINDOW_SECONDS: i64 = 7 * 86_400;

/// The trades settings, flattened into the auditor's command line.
#[derive(Debug, Clone, clap::Args)]
pub struct TradesArgs {
    /// Audit the `trades` table against the reference klines each cycle.
    #[arg(long = "audit-trades", env = "AUDIT_TRADES", default_value = "true")]
    pub trades_enabled: Flag,

    /// Trades window: a whole number of reference candles, ending at the newest candle
    /// boundary at or before now minus the reference timeframe's allowed lag.
    #[arg(
        long = "audit-trades-window",
        env = "AUDIT_TRADES_WINDOW",
        default_value = "1h"
    )]
    pub trades_window: Seconds,

    /// The klines timeframe whose candles say how many trades there were (the finest audited).
    #[arg(
        long = "audit-trades-reference",
        env = "AUDIT_TRADES_REFERENCE",
        default_value = "5m"
    )]
    pub trades_reference: String,
}

/// The validated trades settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradesSettings {
    /// Whether trades datasets are audited.
    pub enabled: bool,
    /// Window, seconds.
    pub window: i64,
    /// Reference timeframe.
    pub reference: Timeframe,
}

impl TradesArgs {
    /// Validates the settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn settings(&self) -> Result<TradesSettings, ConfigError> {
        let reference: Timeframe =
            self.trades_reference
                .trim()
                .parse()
                .map_err(|e: store::timeframe::BadTimeframe| {
                    invalid("AUDIT_TRADES_REFERENCE", e.to_string())
                })?;
        let window = i64::try_from(self.trades_window.0.as_secs()).unwrap_or(i64::MAX);
        let i = reference.seconds();
        if self.trades_window.0.subsec_nanos() != 0
            || window < i
            || window % i != 0
            || window > MAX_WINDOW_SECONDS
        {
            return Err(invalid(
                "AUDIT_TRADES_WINDOW",
                format!(
                    "must be a whole number of {} candles, at most {} s",
                    reference.label(),
                    MAX_WINDOW_SECONDS
                ),
            ));
        }
        Ok(TradesSettings {
            enabled: self.trades_enabled.0,
            window,
            reference,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        trades: TradesArgs,
    }

    fn parse(args: &[&str]) -> Result<TradesSettings, String> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.trades.settings().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_audit_one_hour_against_5m() {
        let s = parse(&[]).expect("valid");
        assert_eq!(
            (s.enabled, s.window, s.reference.label()),
            (true, 3_600, "5m")
        );
    }

    #[test]
    fn the_window_must_be_whole_reference_candles() {
        let e = parse(&["--audit-trades-window", "7m"]).expect_err("7m");
        assert!(e.starts_with("AUDIT_TRADES_WINDOW"), "{e}");
        let e = parse(&["--audit-trades-window", "30w"]).expect_err("unit");
        assert!(e.contains("30w"), "{e}");
        // Days are a unit (since `1d` durations), but 30 days exceed the 7-day bound.
        let e = parse(&["--audit-trades-window", "30d"]).expect_err("too long");
        assert!(e.starts_with("AUDIT_TRADES_WINDOW"), "{e}");
        assert_eq!(
            parse(&["--audit-trades-window", "1d"]).expect("1d").window,
            86_400
        );
        let e = parse(&["--audit-trades-window", "200h"]).expect_err("too long");
        assert!(e.starts_with("AUDIT_TRADES_WINDOW"), "{e}");
        let e = parse(&["--audit-trades-reference", "1M"]).expect_err("month");
        assert!(e.starts_with("AUDIT_TRADES_REFERENCE"), "{e}");
        let s = parse(&[
            "--audit-trades-window",
            "2h",
            "--audit-trades-reference",
            "1h",
        ])
        .expect("valid");
        assert_eq!(s.window, 7_200);
        assert!(!parse(&["--audit-trades", "off"]).expect("valid").enabled);
    }
}
