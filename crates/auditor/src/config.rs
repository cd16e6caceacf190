//! dm-auditor's settings: what to audit (window, timeframes, lag, tolerance, score profile) and
//! the shared service settings, parsed once in `main` and validated before anything connects.
//! The reference: `docs/configuration.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use elected_loop::config::cadence;
pub use runtime::config::ConfigError;
use runtime::config::{AdminArgs, Flag, LogArgs, Seconds, ServiceArgs, invalid, list};
use store::Timeframe;
use store::config::{StoreArgs, timeframes};

use crate::score::Profile;

/// The Kubernetes Lease whose holder is the one replica that audits.
pub const LEASE_NAME: &str = "data-manager-auditor";

/// dm-auditor's command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "dm-auditor",
    version,
    about = "Leader-elected data-quality audits of the extractor's klines, results in MongoDB"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// The service: elected through a Lease, audits every AUDIT_INTERVAL while leading.
    Run(Box<RunArgs>),
    /// One audit cycle now, without election (for operators and tests).
    Once(Box<OnceArgs>),
}

/// Settings of `dm-auditor run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub audit: AuditArgs,
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
    pub events: crate::quality_events::EventArgs,

    /// Pause between the start of one cycle and the next.
    #[arg(long = "audit-interval", env = "AUDIT_INTERVAL", default_value = "300")]
    pub interval: Seconds,

    /// First retry delay after a failed cycle; it doubles per failure, up to AUDIT_INTERVAL.
    #[arg(
        long = "audit-retry-min",
        env = "AUDIT_RETRY_MIN",
        default_value = "15s"
    )]
    pub retry_min: Seconds,

    /// `false` keeps the process up (health and metrics) without auditing or electing.
    #[arg(
        long = "enable-auditor",
        env = "ENABLE_AUDITOR",
        default_value = "true"
    )]
    pub enabled: Flag,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
}

/// Settings of `dm-auditor once`.
#[derive(Debug, Clone, clap::Args)]
pub struct OnceArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub audit: AuditArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,

    /// Print one JSON object with every dataset's health and findings to stdout.
    #[arg(long)]
    pub json: bool,

    /// Do not write to MongoDB (MONGODB_URL is then not needed).
    #[arg(long = "no-write")]
    pub no_write: bool,

    /// Audit as of this instant (RFC 3339) instead of the current time.
    #[arg(long, value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,

    /// Leader term stamped on the writes (fencing; `once` runs without election).
    #[arg(long, default_value_t = 0)]
    pub term: i64,
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an RFC 3339 instant: {e}"))
}

/// What to audit and where: shared by `run` and `once`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub store: StoreArgs,

    /// Symbols to audit: a comma-separated list, or `auto` for every symbol in each table.
    #[arg(long = "audit-symbols", env = "AUDIT_SYMBOLS")]
    pub audit_symbols: Option<String>,

    /// Timeframes to audit (case-sensitive); the table is `klines_<suffix>`.
    #[arg(
        long = "audit-timeframes",
        env = "AUDIT_TIMEFRAMES",
        default_value = "5m,15m,30m,1h,1d"
    )]
    pub timeframes: String,

    /// Window length W.
    #[arg(long = "audit-window", env = "AUDIT_WINDOW", default_value = "86400")]
    pub window: Seconds,

    /// τ: how far (seconds) a row's open time may be from its grid slot and still fill it.
    #[arg(
        long = "gap-tolerance-seconds",
        env = "GAP_TOLERANCE_SECONDS",
        default_value_t = 60
    )]
    pub tolerance: i64,

    /// Allowed age of the newest closed candle: seconds for every timeframe, and/or
    /// `<tf>=<seconds>` overrides, e.g. `15m=57600,30m=90000`. Default max(2·I, 900 s).
    #[arg(long = "audit-max-lag", env = "AUDIT_MAX_LAG")]
    pub max_lag: Option<String>,

    /// Score formulas: `v3`, or `legacy_v1` / `legacy_v2` to compare with the current service.
    #[arg(
        long = "audit-score-profile",
        env = "AUDIT_SCORE_PROFILE",
        default_value = "v3"
    )]
    pub profile: Profile,

    /// N: the fewest due slots each timeframe's window must hold; the window is widened to
    /// max(AUDIT_WINDOW, L + N·I) where needed (with the defaults only `1d`, to 9 days).
    #[arg(
        long = "audit-min-due-slots",
        env = "AUDIT_MIN_DUE_SLOTS",
        default_value_t = 7
    )]
    pub min_due_slots: i64,

    /// Cap on row findings per dataset per cycle (the counts stay exact).
    #[arg(
        long = "audit-max-row-findings",
        env = "AUDIT_MAX_ROW_FINDINGS",
        default_value_t = 100
    )]
    pub max_row_findings: usize,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub trades: crate::trades::TradesArgs,
    /// Days of health history kept: a TTL index on `health_metrics.computed_at` lets the
    /// server delete older health documents, so the collection stops growing with age.
    #[arg(
        long = "health-history-days",
        env = "HEALTH_HISTORY_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub health_history_days: u32,
}

/// Which symbols to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symbols {
    /// This list.
    List(Vec<String>),
    /// `SELECT DISTINCT symbol` per table.
    Auto,
}

/// The validated audit settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Timeframes, in configured order.
    pub timeframes: Vec<Timeframe>,
    /// Symbols.
    pub symbols: Symbols,
    /// W, seconds.
    pub window: i64,
    /// τ, seconds.
    pub tolerance: i64,
    /// L per timeframe, seconds.
    pub max_lag: BTreeMap<Timeframe, i64>,
    /// Score profile.
    pub profile: Profile,
    /// Row finding cap.
    pub max_row_findings: usize,
    /// N: the fewest due slots per window.
    pub min_due_slots: i64,
    /// Database call timeout.
    pub db_timeout: Duration,
    /// The trades audit.
    pub trades: crate::trades::TradesSettings,
    /// Days of health history kept (TTL on `health_metrics.computed_at`).
    pub health_history_days: u32,
}

/// The default allowed lag L: max(2·I, 900 s), so a candle is due only once it had time to
/// arrive.
pub fn default_max_lag(tf: Timeframe) -> i64 {
    (2 * tf.seconds()).max(900)
}

impl AuditArgs {
    /// Validates and resolves the settings.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that breaks a rule.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let timeframes = timeframes(&self.timeframes, "AUDIT_TIMEFRAMES")?;
        let symbols = self.symbols()?;
        let window = i64::try_from(self.window.0.as_secs()).unwrap_or(i64::MAX);
        if window < 60 || self.window.0.subsec_nanos() != 0 {
            return Err(invalid(
                "AUDIT_WINDOW",
                "must be whole seconds, at least 60",
            ));
        }
        self.check_tolerance(&timeframes)?;
        if !(0..=10_000).contains(&self.min_due_slots) {
            return Err(invalid(
                "AUDIT_MIN_DUE_SLOTS",
                "must be between 0 and 10000",
            ));
        }
        let max_lag = self.max_lag(&timeframes)?;
        if self.max_row_findings == 0 {
            return Err(invalid("AUDIT_MAX_ROW_FINDINGS", "must be ≥ 1"));
        }
        self.store.validate()?;
        Ok(Settings {
            timeframes,
            symbols,
            window,
            tolerance: self.tolerance,
            max_lag,
            profile: self.profile,
            max_row_findings: self.max_row_findings,
            min_due_slots: self.min_due_slots,
            db_timeout: self.store.db_timeout.0,
            trades: self.trades.settings()?,
            health_history_days: self.health_history_days,
        })
    }

    /// `AUDIT_SYMBOLS` (`auto`, or a list), else `SUPPORTED_PAIRS`: never empty, ASCII
    /// alphanumeric, upper-cased.
    fn symbols(&self) -> Result<Symbols, ConfigError> {
        let symbols = match self.audit_symbols.as_deref().map(str::trim) {
            Some("auto") => Symbols::Auto,
            Some(s) if !s.is_empty() => Symbols::List(upper(list(s))),
            _ => Symbols::List(upper(list(&self.store.supported_pairs))),
        };
        if symbols == Symbols::List(vec![]) {
            return Err(invalid("SUPPORTED_PAIRS", "no symbol given"));
        }
        if let Symbols::List(l) = &symbols
            && let Some(bad) = l
                .iter()
                .find(|s| !s.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(invalid("AUDIT_SYMBOLS", format!("`{bad}` is not a symbol")));
        }
        Ok(symbols)
    }

    /// τ is at least 0 and below half of every interval: a row within τ of two slots would
    /// fill both.
    fn check_tolerance(&self, timeframes: &[Timeframe]) -> Result<(), ConfigError> {
        if self.tolerance < 0 {
            return Err(invalid("GAP_TOLERANCE_SECONDS", "must be ≥ 0"));
        }
        if let Some(tf) = timeframes
            .iter()
            .find(|tf| self.tolerance.saturating_mul(2) >= tf.seconds())
        {
            return Err(invalid(
                "GAP_TOLERANCE_SECONDS",
                format!(
                    "must be < I/2 for every timeframe ({tf}: < {} s)",
                    tf.seconds() / 2
                ),
            ));
        }
        Ok(())
    }

    /// Each timeframe's freshness limit: its default, overridden by `AUDIT_MAX_LAG` items
    /// (`secs` for all, `tf=secs` for one).
    fn max_lag(&self, timeframes: &[Timeframe]) -> Result<BTreeMap<Timeframe, i64>, ConfigError> {
        let mut max_lag: BTreeMap<Timeframe, i64> = timeframes
            .iter()
            .map(|&tf| (tf, default_max_lag(tf)))
            .collect();
        for item in list(self.max_lag.as_deref().unwrap_or("")) {
            let (target, value) = match item.split_once('=') {
                Some((tf, v)) => (Some(tf.trim().to_owned()), v.trim().to_owned()),
                None => (None, item.clone()),
            };
            let secs: i64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                invalid("AUDIT_MAX_LAG", format!("`{item}`: seconds must be > 0"))
            })?;
            match target {
                None => max_lag.values_mut().for_each(|v| *v = secs),
                Some(tf) => {
                    let tf: Timeframe =
                        tf.parse().map_err(|e: store::timeframe::BadTimeframe| {
                            invalid("AUDIT_MAX_LAG", e.to_string())
                        })?;
                    max_lag.insert(tf, secs);
                }
            }
        }
        Ok(max_lag)
    }
}

fn upper(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.to_ascii_uppercase()).collect()
}

impl RunArgs {
    /// Validates the run settings (the audit settings, the interval, the election).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        cadence(
            self.interval.0,
            "AUDIT_INTERVAL",
            self.retry_min.0,
            "AUDIT_RETRY_MIN",
        )?;
        self.audit.settings()
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn once(args: &[&str]) -> Result<Settings, String> {
        let cli = Cli::try_parse_from(["dm-auditor", "once"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Once(o) => o.audit.settings().map_err(|e| e.to_string()),
            Command::Run(_) => Err("run".into()),
        }
    }

    #[test]
    fn defaults_audit_the_existing_timeframes_with_per_timeframe_lag() {
        let s = once(&[]).expect("defaults are valid");
        let tfs: Vec<&str> = s.timeframes.iter().map(|t| t.label()).collect();
        assert_eq!(tfs, ["5m", "15m", "30m", "1h", "1d"]);
        let lags: Vec<i64> = s.timeframes.iter().map(|t| s.max_lag[t]).collect();
        assert_eq!(lags, [900, 1_800, 3_600, 7_200, 172_800]);
        assert_eq!(s.window, 86_400);
        assert_eq!(
            s.symbols,
            Symbols::List(vec![
                "BTCUSDT".into(),
                "ETHUSDT".into(),
                "BNBUSDT".into(),
                "ADAUSDT".into(),
                "SOLUSDT".into()
            ])
        );
    }

    #[test]
    fn lag_overrides_apply_per_timeframe() {
        let s = once(&["--audit-max-lag", "15m=57600, 30m=90000"]).expect("valid");
        let m15: Timeframe = "15m".parse().expect("tf");
        let h1: Timeframe = "1h".parse().expect("tf");
        assert_eq!((s.max_lag[&m15], s.max_lag[&h1]), (57_600, 7_200));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let e = once(&["--audit-timeframes", "5m,1M"]).expect_err("month");
        assert!(e.starts_with("AUDIT_TIMEFRAMES"), "{e}");
        let e = once(&["--audit-max-lag", "15m=0"]).expect_err("zero lag");
        assert!(e.starts_with("AUDIT_MAX_LAG"), "{e}");
        let e = once(&["--mysql-uri", "postgres://u:secret@h/db"]).expect_err("scheme");
        assert!(e.starts_with("MYSQL_URI") && !e.contains("secret"), "{e}");
        assert!(once(&["--audit-score-profile", "v4"]).is_err());
    }

    #[test]
    fn tolerance_must_stay_below_half_of_every_interval() {
        let e = once(&[
            "--audit-timeframes",
            "1m,1h",
            "--gap-tolerance-seconds",
            "30",
        ])
        .expect_err("τ = I/2 for 1m");
        assert!(
            e.starts_with("GAP_TOLERANCE_SECONDS") && e.contains("1m"),
            "{e}"
        );
        assert!(once(&["--audit-timeframes", "1m", "--gap-tolerance-seconds", "29"]).is_ok());
        let e = once(&["--audit-min-due-slots=-1"]).expect_err("negative");
        assert!(e.starts_with("AUDIT_MIN_DUE_SLOTS"), "{e}");
    }

    #[test]
    fn only_1d_is_widened_to_hold_seven_due_slots_by_default() {
        let s = once(&[]).expect("defaults");
        let now = chrono::Utc::now();
        let windows: Vec<i64> = s
            .timeframes
            .iter()
            .map(|&tf| crate::reads::params(&s, tf, now).window)
            .collect();
        assert_eq!(windows, [86_400, 86_400, 86_400, 86_400, 9 * 86_400]);
    }

    #[test]
    fn audit_symbols_auto_overrides_supported_pairs() {
        assert_eq!(
            once(&["--audit-symbols", "auto"]).expect("valid").symbols,
            Symbols::Auto
        );
        assert_eq!(
            once(&["--supported-pairs", "btcusdt, ethusdt"])
                .expect("valid")
                .symbols,
            Symbols::List(vec!["BTCUSDT".into(), "ETHUSDT".into()])
        );
    }
}
