//! dm-analytics' settings: the cycle's timeframes and interval, the formula options and the
//! shared service settings, parsed once in `main` and validated before anything connects. The
//! reference: `docs/configuration.md`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use elected_loop::config::cadence;
pub use runtime::config::ConfigError;
use runtime::config::{AdminArgs, Flag, LogArgs, Seconds, ServiceArgs, invalid, list};
use store::Timeframe;
use store::config::{StoreArgs, timeframes};

use crate::options::{
    Annualization, CorrelationInput, Options, RegimeOrder, SeasonalHour, SpreadSource, WindowMode,
};

/// The Kubernetes Lease whose holder is the one replica that computes analytics.
pub const LEASE_NAME: &str = "data-manager-analytics";

/// dm-analytics' command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "dm-analytics",
    version,
    about = "Leader-elected market analytics over the extractor's klines, results in MongoDB"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// The service: elected through a Lease, a cycle every ANALYTICS_INTERVAL while leading.
    Run(Box<RunArgs>),
    /// Offline computation over CSV candle files, printed as one JSON object.
    Compute(Box<ComputeArgs>),
}

/// Settings of `dm-analytics run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub election: leader::ElectionArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub options: OptionArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,

    /// Timeframes (case-sensitive), in the order they are analysed.
    #[arg(
        long = "analytics-timeframes",
        env = "ANALYTICS_TIMEFRAMES",
        default_value = "1h,1d"
    )]
    pub timeframes: String,

    /// Pause between the start of one cycle and the next.
    #[arg(
        long = "analytics-interval",
        env = "ANALYTICS_INTERVAL",
        default_value = "900"
    )]
    pub interval: Seconds,

    /// First retry delay after a failed cycle; it doubles per failure, up to the interval.
    #[arg(
        long = "analytics-retry-min",
        env = "ANALYTICS_RETRY_MIN",
        default_value = "30s"
    )]
    pub retry_min: Seconds,

    /// `false` keeps the process up (health and metrics) without computing or electing.
    #[arg(
        long = "enable-analytics",
        env = "ENABLE_ANALYTICS",
        default_value = "true"
    )]
    pub enabled: Flag,
}

/// The formula options as environment variables; every default reproduces the old service.
#[derive(Debug, Clone, clap::Args)]
pub struct OptionArgs {
    /// `legacy` (√252 for every timeframe) or `calendar` (√8760 for 1h, √365 for 1d).
    #[arg(
        long = "annualization",
        env = "ANALYTICS_ANNUALIZATION",
        default_value = "legacy"
    )]
    pub annualization: Annualization,
    /// `prices` (close levels) or `returns` (pct_change of close).
    #[arg(
        long = "correlation-input",
        env = "ANALYTICS_CORRELATION_INPUT",
        default_value = "prices"
    )]
    pub correlation_input: CorrelationInput,
    /// `time` (each metric's fixed time window) or `candles` (at least each metric's minimum).
    #[arg(
        long = "window-mode",
        env = "ANALYTICS_WINDOW_MODE",
        default_value = "time"
    )]
    pub window_mode: WindowMode,
    /// `wall_clock` or `last_candle`: the hour seasonal deviation compares against.
    #[arg(
        long = "seasonal-hour",
        env = "ANALYTICS_SEASONAL_HOUR",
        default_value = "wall_clock"
    )]
    pub seasonal_hour: SeasonalHour,
    /// `legacy` or `fixed` (acceleration rows before breakout).
    #[arg(
        long = "regime-order",
        env = "ANALYTICS_REGIME_ORDER",
        default_value = "legacy"
    )]
    pub regime_order: RegimeOrder,
    /// `none`: spread is disabled until an order-book source is specified.
    #[arg(
        long = "spread-source",
        env = "ANALYTICS_SPREAD_SOURCE",
        default_value = "none"
    )]
    pub spread_source: SpreadSource,
}

impl OptionArgs {
    /// The options.
    pub fn options(&self) -> Options {
        Options {
            annualization: self.annualization,
            correlation_input: self.correlation_input,
            window_mode: self.window_mode,
            seasonal_hour: self.seasonal_hour,
            regime_order: self.regime_order,
            spread_source: self.spread_source,
        }
    }
}

/// Settings of `dm-analytics compute`.
#[derive(Debug, Clone, clap::Args)]
pub struct ComputeArgs {
    /// The candles' timeframe (`1h`, `1d`, …).
    #[arg(long)]
    pub timeframe: Timeframe,
    /// `SYMBOL=FILE`, repeatable: a CSV `open_time,open,high,low,close,volume`.
    #[arg(long = "candles", required = true, value_parser = parse_candles)]
    pub candles: Vec<(String, PathBuf)>,
    /// Windows end here (exclusive; RFC 3339); also the seasonality clock. Default: the newest
    /// open time plus one interval.
    #[arg(long = "as-of", value_parser = parse_time)]
    pub as_of: Option<DateTime<Utc>>,
    /// `NAME=VALUE`, repeatable: a formula option (`regime_order=fixed`,
    /// `ANALYTICS_ANNUALIZATION=calendar`, …).
    #[arg(long = "option")]
    pub options: Vec<String>,
}

fn parse_candles(s: &str) -> Result<(String, PathBuf), String> {
    let (sym, file) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not SYMBOL=FILE"))?;
    let sym = sym.trim().to_ascii_uppercase();
    if sym.is_empty() || !sym.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("`{sym}` is not a symbol"));
    }
    Ok((sym, PathBuf::from(file)))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 instant: {e}"))
}

/// The validated settings of `run`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Symbols, in configured order.
    pub symbols: Vec<String>,
    /// Timeframes, in configured order.
    pub timeframes: Vec<Timeframe>,
    /// Options.
    pub options: Options,
    /// Database call timeout.
    pub db_timeout: Duration,
}

impl RunArgs {
    /// Validates and resolves the settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that breaks a rule.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let timeframes = timeframes(&self.timeframes, "ANALYTICS_TIMEFRAMES")?;
        let mut symbols: Vec<String> = Vec::new();
        for s in list(&self.store.supported_pairs) {
            let s = s.to_ascii_uppercase();
            if !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(invalid("SUPPORTED_PAIRS", format!("`{s}` is not a symbol")));
            }
            if !symbols.contains(&s) {
                symbols.push(s);
            }
        }
        if symbols.is_empty() {
            return Err(invalid("SUPPORTED_PAIRS", "no symbol given"));
        }
        cadence(
            self.interval.0,
            "ANALYTICS_INTERVAL",
            self.retry_min.0,
            "ANALYTICS_RETRY_MIN",
        )?;
        self.store.validate()?;
        Ok(Settings {
            symbols,
            timeframes,
            options: self.options.options(),
            db_timeout: self.store.db_timeout.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn run(args: &[&str]) -> Result<Settings, String> {
        let cli = Cli::try_parse_from(["dm-analytics", "run"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Run(r) => r.validate().map_err(|e| e.to_string()),
            Command::Compute(_) => Err("compute".into()),
        }
    }

    #[test]
    fn defaults_are_hourly_and_daily_with_parity_options() {
        let s = run(&[]).expect("defaults are valid");
        let tfs: Vec<&str> = s.timeframes.iter().map(|t| t.label()).collect();
        assert_eq!(tfs, ["1h", "1d"]);
        assert_eq!(s.symbols.len(), 5);
        assert_eq!(s.options, Options::default());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = run(&["--analytics-timeframes", "1h,1M"]).expect_err("month");
        assert!(e.starts_with("ANALYTICS_TIMEFRAMES"), "{e}");
        let e = run(&["--supported-pairs", "BTC-USDT"]).expect_err("symbol");
        assert!(e.starts_with("SUPPORTED_PAIRS"), "{e}");
        assert!(run(&["--regime-order", "sideways"]).is_err());
    }

    #[test]
    fn compute_takes_repeated_candles_and_options() {
        let cli = Cli::try_parse_from([
            "dm-analytics",
            "compute",
            "--timeframe",
            "1h",
            "--candles",
            "btcusdt=a.csv",
            "--candles",
            "ETHUSDT=b.csv",
            "--option",
            "regime_order=fixed",
        ])
        .expect("valid");
        let Command::Compute(c) = cli.command else {
            panic!("compute");
        };
        assert_eq!(c.candles[0].0, "BTCUSDT");
        assert_eq!(c.candles.len(), 2);
        assert_eq!(c.options, ["regime_order=fixed"]);
    }
}
