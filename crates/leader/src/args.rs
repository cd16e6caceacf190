//! The election's command-line flags and environment variables, for binaries to flatten.

use std::time::Duration;

use runtime::config::parse_duration;

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
    /// How long a Lease stays valid after its last observed renew (whole seconds). Durations
    /// read as every other duration setting does: `90s`, `500ms`, `5m`, `1h` or bare seconds.
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
    /// [`ConfigError`] naming the setting that broke a rule of [`ElectionConfig::validate`].
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
    fn lease_settings_read_durations_as_every_other_duration_setting_does() {
        let secs = Duration::from_secs;
        for (text, expected) in [
            ("1h", secs(3600)),
            ("90s", secs(90)),
            ("500ms", Duration::from_millis(500)),
        ] {
            let everywhere: runtime::config::Seconds = text.parse().expect(text);
            assert_eq!(everywhere.0, expected, "{text}");
            let args = parse(&[
                "--lease-duration",
                text,
                "--lease-renew-deadline",
                text,
                "--lease-retry-period",
                text,
                "--lease-api-timeout",
                text,
            ])
            .expect(text);
            let read = [
                args.lease_duration,
                args.renew_deadline,
                args.retry_period,
                args.api_timeout.expect("given"),
            ];
            assert_eq!(read, [expected; 4], "{text}");
        }
        let cfg = parse(&["--lease-duration", "1h"])
            .expect("parses")
            .to_config("x")
            .expect("an hour is a valid lease duration");
        assert_eq!(cfg.lease_duration, secs(3600));
    }

    #[test]
    fn garbage_durations_are_a_bad_duration_naming_the_value() {
        for bad in ["soon", "10 parsecs", "-1s", "1.5.2s", "5y"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
            let flag = format!("--lease-retry-period={bad}");
            let refused = parse(&[&flag]).expect_err(bad);
            assert!(refused.to_string().contains(&err.to_string()), "{refused}");
        }
    }

    #[test]
    fn lease_duration_keeps_its_whole_seconds_rule_after_parsing() {
        let args = parse(&["--lease-duration", "15.5s"]).expect("parses");
        assert!(matches!(
            args.to_config("x"),
            Err(ConfigError::LeaseDurationNotWholeSeconds { .. })
        ));
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
