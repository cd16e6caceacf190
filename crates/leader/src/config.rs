//! Election settings with client-go's defaults, validated before anything connects.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// client-go's `LeaseDuration` default.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// client-go's `RenewDeadline` default.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// client-go's `RetryPeriod` default.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: followers wait up to this many RetryPeriods between attempts, so
/// the renew deadline must exceed it for a leader to get at least one retry before it must step
/// down.
pub const JITTER_FACTOR: f64 = 1.2;

/// Whether this process elects a leader through a Lease or simply assumes it leads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ElectionMode {
    /// Lease election against the Kubernetes API server (the default).
    #[default]
    Kubernetes,
    /// No election: this process leads at once, with term 0. For running outside Kubernetes
    /// with a single replica only.
    Disabled,
}

impl ElectionMode {
    /// The configuration value (`kubernetes` or `disabled`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Disabled => "disabled",
        }
    }
}

impl fmt::Display for ElectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ElectionMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kubernetes" => Ok(Self::Kubernetes),
            "disabled" => Ok(Self::Disabled),
            other => Err(format!(
                "unknown leader election mode {other:?}; expected \"kubernetes\" or \"disabled\""
            )),
        }
    }
}

/// Everything one elector needs (the settings are described in `docs/configuration.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Lease election or local mode.
    pub mode: ElectionMode,
    /// Name of the Lease; one per scheduler, e.g. `data-manager-auditor`.
    pub lease_name: String,
    /// Namespace of the Lease; `None` uses the client's default namespace (in a pod: its own).
    pub namespace: Option<String>,
    /// Our `holderIdentity`; unique per process start (see [`crate::identity`]).
    pub identity: String,
    /// How long a Lease stays valid after its holder's last renew was observed. Whole seconds,
    /// because it is written as `leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// The leader steps down if no renew succeeded within this long of the last good one.
    pub renew_deadline: Duration,
    /// Time between attempts (renews, and acquire tries before jitter).
    pub retry_period: Duration,
    /// Upper bound for one API call (also capped by the time left before the renew deadline).
    pub api_timeout: Duration,
    /// Whether [`crate::ElectorHandle::shutdown`] clears the holder so a follower takes over
    /// after about one RetryPeriod instead of a full LeaseDuration.
    pub release_on_shutdown: bool,
}

impl ElectionConfig {
    /// A config with client-go's timings and `api_timeout` = RetryPeriod.
    pub fn new(lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        Self {
            mode: ElectionMode::Kubernetes,
            lease_name: lease_name.into(),
            namespace: None,
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            api_timeout: DEFAULT_RETRY_PERIOD,
            release_on_shutdown: true,
        }
    }

    /// Replaces the three timings and sets `api_timeout` to the retry period.
    pub fn with_timings(
        mut self,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = renew_deadline;
        self.retry_period = retry_period;
        self.api_timeout = retry_period;
        self
    }

    /// Checks `LeaseDuration > RenewDeadline > 1.2 × RetryPeriod > 0` (the margin that makes the
    /// election safe, see `docs/leader-election.md`), a whole-second LeaseDuration, a valid Lease
    /// name and a non-empty identity and namespace.
    ///
    /// # Errors
    /// The first rule broken, naming the setting and its environment variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_lease_name(&self.lease_name)?;
        if let Some(ns) = &self.namespace
            && ns.trim().is_empty()
        {
            return Err(ConfigError::EmptyNamespace);
        }
        if self.identity.trim().is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        for (setting, value) in [
            (Setting::LeaseDuration, self.lease_duration),
            (Setting::RenewDeadline, self.renew_deadline),
            (Setting::RetryPeriod, self.retry_period),
            (Setting::ApiTimeout, self.api_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::NotPositive { setting });
            }
        }
        if self.lease_duration.subsec_nanos() != 0
            || i32::try_from(self.lease_duration.as_secs()).is_err()
        {
            return Err(ConfigError::LeaseDurationNotWholeSeconds {
                lease_duration: self.lease_duration,
            });
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseDurationNotAboveRenewDeadline {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR) {
            return Err(ConfigError::RenewDeadlineNotAboveJitteredRetry {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        Ok(())
    }
}

/// A timing setting, named for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// `lease_duration` / `LEASE_DURATION`.
    LeaseDuration,
    /// `renew_deadline` / `LEASE_RENEW_DEADLINE`.
    RenewDeadline,
    /// `retry_period` / `LEASE_RETRY_PERIOD`.
    RetryPeriod,
    /// `api_timeout` / `LEASE_API_TIMEOUT`.
    ApiTimeout,
}

impl Setting {
    /// The environment variable that sets it.
    pub const fn env(self) -> &'static str {
        match self {
            Self::LeaseDuration => "LEASE_DURATION",
            Self::RenewDeadline => "LEASE_RENEW_DEADLINE",
            Self::RetryPeriod => "LEASE_RETRY_PERIOD",
            Self::ApiTimeout => "LEASE_API_TIMEOUT",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.env())
    }
}

/// A configuration the election refuses to start with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The Lease name is empty or not a valid Kubernetes object name.
    #[error("LEASE_NAME {name:?} is invalid: {reason}")]
    InvalidLeaseName {
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// `POD_NAMESPACE` was given but empty.
    #[error("POD_NAMESPACE is set but empty")]
    EmptyNamespace,
    /// The identity is empty (neither `POD_NAME` nor `HOSTNAME` was usable).
    #[error("the election identity is empty: set POD_NAME (downward API) or HOSTNAME")]
    EmptyIdentity,
    /// A duration is zero.
    #[error("{setting} must be greater than zero")]
    NotPositive {
        /// Which setting.
        setting: Setting,
    },
    /// The lease duration is written as `leaseDurationSeconds`, so it must be whole seconds.
    #[error(
        "LEASE_DURATION must be a whole number of seconds (at least 1s), got {lease_duration:?}"
    )]
    LeaseDurationNotWholeSeconds {
        /// The rejected value.
        lease_duration: Duration,
    },
    /// `LeaseDuration > RenewDeadline` is violated.
    #[error(
        "LEASE_DURATION ({lease_duration:?}) must be longer than LEASE_RENEW_DEADLINE \
         ({renew_deadline:?}): the difference is the margin in which a leader that lost contact \
         stops before anyone else may take over"
    )]
    LeaseDurationNotAboveRenewDeadline {
        /// LeaseDuration.
        lease_duration: Duration,
        /// RenewDeadline.
        renew_deadline: Duration,
    },
    /// `RenewDeadline > 1.2 × RetryPeriod` is violated.
    #[error(
        "LEASE_RENEW_DEADLINE ({renew_deadline:?}) must be longer than 1.2 × LEASE_RETRY_PERIOD \
         ({retry_period:?}), so that a leader gets at least one retry before it must step down"
    )]
    RenewDeadlineNotAboveJitteredRetry {
        /// RenewDeadline.
        renew_deadline: Duration,
        /// RetryPeriod.
        retry_period: Duration,
    },
}

/// Checks a Lease name against Kubernetes' DNS-subdomain rule (lowercase alphanumerics, `-` and
/// `.`, starting and ending alphanumeric, at most 253 characters).
fn validate_lease_name(name: &str) -> Result<(), ConfigError> {
    let invalid = |reason| ConfigError::InvalidLeaseName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if name.len() > 253 {
        return Err(invalid("must be at most 253 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(invalid(
            "may contain only lowercase letters, digits, '-' and '.'",
        ));
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(name.bytes().next()) || !alnum(name.bytes().last()) {
        return Err(invalid("must start and end with a letter or digit"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn cfg() -> ElectionConfig {
        ElectionConfig::new("data-manager-auditor", "pod-0_abcd1234")
    }

    #[test]
    fn client_go_defaults_are_valid() {
        let c = cfg();
        assert_eq!(c.lease_duration, Duration::from_secs(15));
        assert_eq!(c.renew_deadline, Duration::from_secs(10));
        assert_eq!(c.retry_period, Duration::from_secs(2));
        assert_eq!(c.api_timeout, Duration::from_secs(2));
        assert!(c.release_on_shutdown);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn short_test_timings_and_operations_timings_are_valid() {
        assert_eq!(
            cfg().with_timings(ms(1000), ms(600), ms(200)).validate(),
            Ok(())
        );
        let secs = Duration::from_secs;
        assert_eq!(
            cfg().with_timings(secs(30), secs(20), secs(4)).validate(),
            Ok(())
        );
    }

    #[test]
    fn lease_duration_must_exceed_renew_deadline() {
        let err = cfg()
            .with_timings(ms(1000), ms(1000), ms(200))
            .validate()
            .expect_err("equal is not enough");
        assert!(matches!(
            err,
            ConfigError::LeaseDurationNotAboveRenewDeadline { .. }
        ));
        assert!(err.to_string().contains("LEASE_DURATION"), "{err}");
    }

    #[test]
    fn renew_deadline_must_exceed_jittered_retry_period() {
        // 1.2 × 500 ms = 600 ms: a deadline of exactly 600 ms is rejected.
        let err = cfg()
            .with_timings(ms(1000), ms(600), ms(500))
            .validate()
            .expect_err("600 ms is not above 1.2 × 500 ms");
        assert!(matches!(
            err,
            ConfigError::RenewDeadlineNotAboveJitteredRetry { .. }
        ));
        assert!(err.to_string().contains("1.2"), "{err}");
        assert_eq!(
            cfg().with_timings(ms(1000), ms(601), ms(500)).validate(),
            Ok(())
        );
    }

    #[test]
    fn zero_durations_are_rejected_by_name() {
        let err = cfg()
            .with_timings(ms(1000), ms(600), ms(0))
            .validate()
            .expect_err("zero retry period");
        assert_eq!(
            err,
            ConfigError::NotPositive {
                setting: Setting::RetryPeriod
            }
        );
        assert_eq!(
            err.to_string(),
            "LEASE_RETRY_PERIOD must be greater than zero"
        );
        let mut c = cfg();
        c.api_timeout = Duration::ZERO;
        assert_eq!(
            c.validate(),
            Err(ConfigError::NotPositive {
                setting: Setting::ApiTimeout
            })
        );
    }

    #[test]
    fn fractional_lease_duration_is_rejected() {
        assert!(matches!(
            cfg().with_timings(ms(1500), ms(600), ms(200)).validate(),
            Err(ConfigError::LeaseDurationNotWholeSeconds { .. })
        ));
    }

    #[test]
    fn bad_lease_names_and_empty_identity_are_rejected() {
        for name in [
            "",
            "Upper",
            "under_score",
            "-leading",
            "trailing.",
            &"a".repeat(254),
        ] {
            let mut c = cfg();
            c.lease_name = name.to_owned();
            assert!(
                matches!(c.validate(), Err(ConfigError::InvalidLeaseName { .. })),
                "{name:?} accepted"
            );
        }
        let mut c = cfg();
        c.identity = " ".into();
        assert_eq!(c.validate(), Err(ConfigError::EmptyIdentity));
        let mut c = cfg();
        c.namespace = Some(String::new());
        assert_eq!(c.validate(), Err(ConfigError::EmptyNamespace));
    }

    #[test]
    fn mode_parses_case_insensitively_and_rejects_others() {
        assert_eq!("kubernetes".parse(), Ok(ElectionMode::Kubernetes));
        assert_eq!("Disabled".parse(), Ok(ElectionMode::Disabled));
        assert!("off".parse::<ElectionMode>().is_err());
    }
}
