//! The election's command-line flags and environment variables, for binaries to flatten.

use std::time::Duration;

use crate::config::{ConfigError, ElectionConfig, ElectionMode};
use crate::identity::identity;

/// Leader-election settings for a scheduler binary. Flatten it into the binary's `Config` with
/// `#[command(flatten)]` and turn it into an [`ElectionConfig`] with
/// [`ElectionArgs::to_config`], passing the binary's own Lease name as the default.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct ElectionArgs {
    /// Leader election mode: `kubernetes` (a coordination.k8s.io Lease) or `disabled` (this
    /// process leads at once; only for running outside Kubernetes with a single replica).
    #[arg(
        long = "leader-election",
        env = "LEADER_ELECTION",
        default_value = "kubernetes"
    )]
    pub mode: ElectionMode,
    /// Name of the Lease. Defaults to the binary's own, e.g. `data-manager-auditor`.
    #[arg(long, env = "LEASE_NAME")]
    pub lease_name: Option<String>,
    /// Namespace of the Lease. Defaults to the pod's namespace from the in-cluster config.
    #[arg(long = "lease-namespace", env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Pod name from the downward API; the holder identity is this plus a random suffix.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Fallback for the pod name when `POD_NAME` is unset.
    #[arg(long, env = "HOSTNAME", hide = true)]
    pub hostname: Option<String>,
    /// How long a Lease stays valid after its last observed renew (whole seconds).
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// The leader steps down when no renew succeeded for this long.
    #[arg(long = "lease-renew-deadline", env = "LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// Time between election attempts (followers add up to 20 % jitter).
    #[arg(long = "lease-retry-period", env = "LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    /// Timeout of one API call. Defaults to the retry period.
    #[arg(long = "lease-api-timeout", env = "LEASE_API_TIMEOUT", value_parser = parse_duration)]
    pub api_timeout: Option<Duration>,
    /// Clear the Lease holder on graceful shutdown so a follower takes over at once.
    #[arg(long = "lease-release-on-shutdown", env = "LEASE_RELEASE_ON_SHUTDOWN", default_value_t = true, action = clap::ArgAction::Set)]
    pub release_on_shutdown: bool,
}

impl ElectionArgs {
    /// Builds and validates the election config. `default_lease_name` is the binary's Lease
    /// (e.g. `data-manager-auditor`), used when `LEASE_NAME` is unset. Each call draws a new
    /// identity suffix, so call it once per process.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting that broke a rule of `leader.md` §3.
    pub fn to_config(&self, default_lease_name: &str) -> Result<ElectionConfig, ConfigError> {
        let config = ElectionConfig {
            mode: self.mode,
            lease_name: self
                .lease_name
                .clone()
                .unwrap_or_else(|| default_lease_name.to_owned()),
            namespace: self.namespace.clone(),
            identity: identity(self.pod_name.as_deref(), self.hostname.as_deref()),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            api_timeout: self.api_timeout.unwrap_or(self.retry_period),
            release_on_shutdown: self.release_on_shutdown,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Parses `15s`, `600ms`, `2m` or a bare number of seconds.
///
/// # Errors
/// A message naming the bad value, which clap shows with the flag or variable.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?}: expected e.g. \"15s\", \"600ms\" or \"2m\"");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match unit.trim() {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::ConfigError;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        election: ElectionArgs,
    }

    fn parse(args: &[&str]) -> Result<ElectionArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).map(|c| c.election)
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("600ms"), Ok(Duration::from_millis(600)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "s", "1.5s", "10h", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn explicit_flags_override_defaults_and_binary_default_lease_name_applies() {
        let args = parse(&[
            "--pod-name",
            "auditor-0",
            "--lease-namespace",
            "petrosa-apps",
            "--lease-duration",
            "30s",
            "--lease-renew-deadline",
            "20s",
            "--lease-retry-period",
            "4s",
        ])
        .expect("parses");
        let cfg = args.to_config("data-manager-auditor").expect("valid");
        assert_eq!(cfg.lease_name, "data-manager-auditor");
        assert_eq!(cfg.namespace.as_deref(), Some("petrosa-apps"));
        assert!(cfg.identity.starts_with("auditor-0_"), "{}", cfg.identity);
        assert_eq!(cfg.lease_duration, Duration::from_secs(30));
        assert_eq!(cfg.api_timeout, Duration::from_secs(4));
        assert!(cfg.release_on_shutdown);

        let args = parse(&[
            "--lease-name",
            "other-lease",
            "--leader-election",
            "disabled",
        ])
        .expect("parses");
        let cfg = args.to_config("data-manager-auditor").expect("valid");
        assert_eq!(cfg.lease_name, "other-lease");
        assert_eq!(cfg.mode, ElectionMode::Disabled);
    }

    #[test]
    fn invalid_timings_from_flags_are_rejected_with_the_variable_name() {
        let args =
            parse(&["--lease-duration", "10s", "--lease-renew-deadline", "10s"]).expect("parses");
        let err = args.to_config("x").expect_err("LD = RD");
        assert!(matches!(
            err,
            ConfigError::LeaseDurationNotAboveRenewDeadline { .. }
        ));
        assert!(err.to_string().contains("LEASE_RENEW_DEADLINE"), "{err}");
    }

    #[test]
    fn unknown_mode_and_malformed_duration_fail_parsing() {
        assert!(parse(&["--leader-election", "maybe"]).is_err());
        assert!(parse(&["--lease-duration", "soon"]).is_err());
    }
}
