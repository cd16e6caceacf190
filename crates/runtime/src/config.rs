//! Argument groups shared by every binary, the value types their flags parse into, and the
//! error a setting that breaks a rule is reported with.
//!
//! Every field reads an environment variable (the names the deployment sets) and a `--flag`; a
//! bad value is reported by clap with the variable's name before anything connects.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The admin HTTP server: metrics and health on one port.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Port of the HTTP server that serves `/metrics`, `/health/liveness` and `/health/readiness`.
    #[arg(long = "metrics-port", env = "METRICS_PORT", default_value_t = 9090)]
    pub metrics_port: u16,

    /// Address the admin server binds to.
    #[arg(long = "metrics-host", env = "METRICS_HOST", default_value = "0.0.0.0")]
    pub metrics_host: std::net::IpAddr,
}

/// Logging.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log level (`ERROR`, `WARN`, `INFO`, `DEBUG`, `TRACE`) or a tracing filter directive
    /// such as `info,consumer=debug`.
    #[arg(long = "log-level", env = "LOG_LEVEL", default_value = "INFO")]
    pub log_level: String,

    /// Log line format.
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        default_value = "json",
        value_enum
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable text.
    Text,
}

/// A duration setting, parsed by [`parse_duration`]. Every duration variable of every binary
/// reads this way, so `1h` means the same in `AUDIT_INTERVAL` and `LEASE_DURATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub Duration);

/// A value that does not read as a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (use e.g. 60, 60s, 500ms, 5m, 1h, 1d)")]
pub struct BadDuration(String);

/// Parses `300`, `300s`, `500ms`, `5m`, `1h`, `1d` or a decimal such as `1.5s`. A bare number is
/// seconds, as in the deployment's variables (`AUDIT_INTERVAL=300`).
///
/// # Errors
/// [`BadDuration`] naming the value: no number, a negative one, an unknown unit, or a
/// duration too large to represent.
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| BadDuration(s.to_owned()))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(BadDuration(s.to_owned())),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| BadDuration(s.to_owned()))
}

impl FromStr for Seconds {
    type Err = BadDuration;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Seconds)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A boolean setting, in any case: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off` (or empty);
/// anything else is an error, so a typo is never silently read as false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

/// A value that does not read as a [`Flag`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a boolean (use true or false)")]
pub struct BadFlag(String);

impl FromStr for Flag {
    type Err = BadFlag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Flag(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Flag(false)),
            _ => Err(BadFlag(s.to_owned())),
        }
    }
}

/// The service's probe cadence and drain deadline.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// How often MySQL and Mongo are probed for readiness.
    #[arg(long = "probe-interval", env = "PROBE_INTERVAL", default_value = "10s")]
    pub probe_interval: Seconds,

    /// How long a SIGTERM drain may take (keep it below terminationGracePeriodSeconds).
    #[arg(long = "shutdown-grace", env = "SHUTDOWN_GRACE", default_value = "20s")]
    pub shutdown_grace: Seconds,
}

/// A setting that parsed but breaks a rule; names the variable, so the operator knows what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable (or flag) at fault.
    pub var: &'static str,
    /// The rule it broke.
    pub reason: String,
}

/// The [`ConfigError`] for `var` breaking a rule.
pub fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

/// The non-empty, trimmed items of a comma-separated list, in order.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_bare_seconds_and_units() {
        assert_eq!("300".parse(), Ok(Seconds(Duration::from_secs(300))));
        assert_eq!("60s".parse(), Ok(Seconds(Duration::from_secs(60))));
        assert_eq!("500ms".parse(), Ok(Seconds(Duration::from_millis(500))));
        assert_eq!("5m".parse(), Ok(Seconds(Duration::from_secs(300))));
        assert_eq!("1.5".parse(), Ok(Seconds(Duration::from_millis(1500))));
        assert_eq!("1d".parse(), Ok(Seconds(Duration::from_secs(86_400))));
    }

    #[test]
    fn bad_durations_name_the_value() {
        let err = "ten".parse::<Seconds>().expect_err("not a number");
        assert!(err.to_string().contains("`ten`"));
        assert!("5 days".parse::<Seconds>().is_err());
        assert!("-5".parse::<Seconds>().is_err());
        assert!("".parse::<Seconds>().is_err());
    }

    #[test]
    fn flags_read_true_and_false_and_reject_typos() {
        assert_eq!("TRUE".parse(), Ok(Flag(true)));
        assert_eq!("false".parse(), Ok(Flag(false)));
        assert!("treu".parse::<Flag>().is_err());
    }
}
