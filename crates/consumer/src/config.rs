//! dm-consumer's settings, read once at startup from environment variables and flags.

use std::path::PathBuf;
use std::time::Duration;

use events::Symbol;
pub use runtime::config::ConfigError;
use runtime::config::{AdminArgs, LogArgs, Seconds, invalid};
use runtime::redact::{Credentials, SecretUrl, UrlParts, redact_text};

use crate::symbols::SymbolLabels;

/// Settings for dm-consumer.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "dm-consumer",
    version,
    about = "Counts the market-data stream on NATS and exports it as Prometheus metrics"
)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub nats: NatsArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub admin: AdminArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,

    /// Interval between stats lines (every count in a line is for this interval).
    #[arg(long = "stats-interval", env = "STATS_INTERVAL", default_value = "60s")]
    pub stats_interval: Seconds,

    /// How often counts move from the message loop into `/metrics` (and liveness beats).
    /// Shorter means fresher metrics at a small CPU cost; the e2e benchmark uses 10ms.
    #[arg(long = "flush-interval", env = "FLUSH_INTERVAL", default_value = "1s")]
    pub flush_interval: Seconds,

    /// Distinct symbols that get their own `symbol` label; later ones are counted as `other`.
    #[arg(
        long = "max-symbol-labels",
        env = "MAX_SYMBOL_LABELS",
        default_value_t = 500
    )]
    pub max_symbol_labels: usize,

    /// Symbols that get their own label before any message arrives, so junk symbols can never
    /// push them into `other` (comma-separated). Empty: `SUPPORTED_PAIRS` is used.
    #[arg(
        long = "priority-symbols",
        env = "PRIORITY_SYMBOLS",
        default_value = ""
    )]
    pub priority_symbols: String,

    /// The pairs the pipeline trades (comma-separated), as the schedulers read them; reserved
    /// as labels when `PRIORITY_SYMBOLS` is empty.
    #[arg(long = "supported-pairs", env = "SUPPORTED_PAIRS", default_value = "")]
    pub supported_pairs: String,

    /// Event times further than this ahead of the receive time are implausible: they are
    /// counted and otherwise treated as absent (no latency, no last-seen time).
    #[arg(
        long = "max-event-time-skew",
        env = "MAX_EVENT_TIME_SKEW",
        default_value = "1d"
    )]
    pub max_event_time_skew: Seconds,

    /// How long a SIGTERM drain may take before the process exits anyway (keep it below the
    /// pod's terminationGracePeriodSeconds).
    #[arg(long = "shutdown-grace", env = "SHUTDOWN_GRACE", default_value = "20s")]
    pub shutdown_grace: Seconds,

    /// Liveness fails when the main loop has made no progress for this long.
    #[arg(
        long = "liveness-stall-after",
        env = "LIVENESS_STALL_AFTER",
        default_value = "60s"
    )]
    pub liveness_stall_after: Seconds,

    /// Replay mode: read one envelope per line from FILE (`-` for stdin) through the same
    /// processing path, print one JSON summary to stdout and exit. No NATS, no HTTP.
    #[arg(long = "replay", value_name = "FILE")]
    pub replay: Option<PathBuf>,
}

/// NATS connection and subscription.
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL, or a comma-separated list of them for a cluster. Credentials
    /// (`user:password@` or a `token@`) are taken out of the URLs and sent only in the NATS
    /// CONNECT; they are never logged.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    pub url: SecretUrl,

    /// Subject the socket client publishes on.
    #[arg(
        long = "nats-subject",
        env = "NATS_CONSUMER_SUBJECT",
        default_value = "binance.futures.websocket.data"
    )]
    pub subject: String,

    /// Queue group: replicas in the same group share the stream, each message goes to one.
    #[arg(
        long = "nats-queue-group",
        env = "NATS_QUEUE_GROUP",
        default_value = "data-manager-consumer"
    )]
    pub queue_group: String,

    /// Timeout of one connection attempt.
    #[arg(
        long = "nats-connect-timeout",
        env = "NATS_CONNECT_TIMEOUT",
        default_value = "10s"
    )]
    pub connect_timeout: Seconds,

    /// Longest wait between reconnect attempts; the wait doubles from 100 ms up to this.
    #[arg(
        long = "nats-reconnect-time-wait",
        env = "NATS_RECONNECT_TIME_WAIT",
        default_value = "2s"
    )]
    pub reconnect_max_wait: Seconds,

    /// Accepted for compatibility and ignored: the consumer reconnects forever (the current
    /// service gave up after 10 attempts and nothing noticed).
    #[arg(
        long = "nats-max-reconnect-attempts",
        env = "NATS_MAX_RECONNECT_ATTEMPTS"
    )]
    pub max_reconnect_attempts: Option<i64>,

    /// Messages the client buffers for the subscription before it drops (slow consumer).
    /// Each buffered message costs its size in memory (~600 B on average).
    #[arg(
        long = "nats-subscription-capacity",
        env = "NATS_SUBSCRIPTION_CAPACITY",
        default_value_t = 32_768
    )]
    pub subscription_capacity: usize,
}

/// The servers of `NATS_URL` without credentials, and the one set of credentials they carry.
#[derive(Debug, Clone)]
pub struct NatsServers {
    /// Every server of the list, in order, with no userinfo left in them.
    pub addrs: Vec<async_nats::ServerAddr>,
    /// The credentials, if any element had some.
    pub credentials: Option<Credentials>,
}

impl NatsArgs {
    /// Splits `NATS_URL` on commas (as every NATS client does for a cluster), takes the
    /// credentials out of each element (the userinfo ends at the element's last `@`) and
    /// parses what is left.
    ///
    /// # Errors
    /// An element that is not a NATS address, an empty list, or elements with different
    /// credentials (a client authenticates with one set). Messages never quote a secret.
    pub fn servers(&self) -> Result<NatsServers, ConfigError> {
        let elements = runtime::config::list(self.url.expose());
        if elements.is_empty() {
            return Err(invalid("NATS_URL", "no server given"));
        }
        let mut addrs = Vec::with_capacity(elements.len());
        let mut credentials: Option<Credentials> = None;
        for (i, element) in elements.iter().enumerate() {
            let parts = UrlParts::split(element);
            let addr = parts
                .without_userinfo()
                .parse::<async_nats::ServerAddr>()
                .map_err(|e| {
                    invalid(
                        "NATS_URL",
                        format!(
                            "server {} of {} in `{}` is not a NATS server address: {}",
                            i + 1,
                            elements.len(),
                            self.url,
                            redact_text(&e.to_string())
                        ),
                    )
                })?;
            addrs.push(addr);
            if let Some(userinfo) = parts.userinfo.filter(|u| !u.is_empty()) {
                let these = Credentials::from_userinfo(userinfo);
                match &credentials {
                    Some(first) if *first != these => {
                        return Err(invalid(
                            "NATS_URL",
                            format!(
                                "the servers in `{}` carry different credentials; a NATS client authenticates with one set",
                                self.url
                            ),
                        ));
                    }
                    _ => credentials = Some(these),
                }
            }
        }
        Ok(NatsServers { addrs, credentials })
    }
}

/// A NATS subject or queue token: non-empty, no whitespace, no empty tokens.
fn valid_subject(s: &str, wildcards: bool) -> bool {
    !s.is_empty()
        && !s.contains(char::is_whitespace)
        && s.split('.').all(|t| !t.is_empty())
        && (wildcards || !s.contains(['*', '>']))
}

impl Config {
    /// Checks the rules clap cannot express.
    ///
    /// # Errors
    /// The first broken rule, naming its variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.stats_interval.0 < Duration::from_secs(1) {
            return Err(invalid("STATS_INTERVAL", "must be at least 1s"));
        }
        if self.flush_interval.0 < Duration::from_millis(10)
            || self.flush_interval.0 > Duration::from_secs(10)
        {
            return Err(invalid("FLUSH_INTERVAL", "must be between 10ms and 10s"));
        }
        if self.liveness_stall_after.0 < Duration::from_secs(5) {
            return Err(invalid("LIVENESS_STALL_AFTER", "must be at least 5s"));
        }
        if self.max_symbol_labels == 0 {
            return Err(invalid("MAX_SYMBOL_LABELS", "must be at least 1"));
        }
        self.reserved_symbols()?;
        self.nats.validate()
    }

    /// The symbols reserved as labels: `PRIORITY_SYMBOLS`, else `SUPPORTED_PAIRS`.
    ///
    /// # Errors
    /// A symbol that is not 1–20 of `A-Z`, `0-9`, `_`.
    pub fn reserved_symbols(&self) -> Result<Vec<Symbol>, ConfigError> {
        let (var, value) = if self.priority_symbols.trim().is_empty() {
            ("SUPPORTED_PAIRS", &self.supported_pairs)
        } else {
            ("PRIORITY_SYMBOLS", &self.priority_symbols)
        };
        let mut out: Vec<Symbol> = Vec::new();
        for item in runtime::config::list(value) {
            let symbol = Symbol::parse(&item)
                .ok_or_else(|| invalid(var, format!("`{item}` is not a symbol")))?;
            if !out.contains(&symbol) {
                out.push(symbol);
            }
        }
        Ok(out)
    }

    /// The processing path as configured: reserved labels, the label budget and the skew.
    ///
    /// # Errors
    /// As [`Config::reserved_symbols`].
    pub fn processor(&self) -> Result<crate::process::Processor, ConfigError> {
        let labels = SymbolLabels::new(self.max_symbol_labels, &self.reserved_symbols()?);
        let skew_ms = i64::try_from(self.max_event_time_skew.0.as_millis()).unwrap_or(i64::MAX);
        Ok(crate::process::Processor::new(labels, skew_ms))
    }
}

impl NatsArgs {
    /// Checks the NATS settings.
    ///
    /// # Errors
    /// The first broken rule, naming its variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.servers()?;
        if !valid_subject(&self.subject, true) {
            return Err(invalid(
                "NATS_CONSUMER_SUBJECT",
                format!("`{}` is not a valid subject", self.subject),
            ));
        }
        if !valid_subject(&self.queue_group, false) || self.queue_group.contains('.') {
            return Err(invalid(
                "NATS_QUEUE_GROUP",
                format!("`{}` is not a valid queue group", self.queue_group),
            ));
        }
        if self.connect_timeout.0 < Duration::from_millis(100) {
            return Err(invalid("NATS_CONNECT_TIMEOUT", "must be at least 100ms"));
        }
        if self.reconnect_max_wait.0 < Duration::from_millis(100) {
            return Err(invalid(
                "NATS_RECONNECT_TIME_WAIT",
                "must be at least 100ms",
            ));
        }
        if self.subscription_capacity == 0 {
            return Err(invalid("NATS_SUBSCRIPTION_CAPACITY", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let cfg =
            Config::try_parse_from(std::iter::once("dm-consumer").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    #[test]
    fn defaults_match_the_configuration_reference() {
        let cfg = parse(&[]).expect("defaults are valid");
        assert_eq!(cfg.nats.url.expose(), "nats://127.0.0.1:4222");
        assert_eq!(cfg.nats.subject, "binance.futures.websocket.data");
        assert_eq!(cfg.nats.queue_group, "data-manager-consumer");
        assert_eq!(cfg.admin.metrics_port, 9090);
        assert_eq!(cfg.stats_interval.0, Duration::from_secs(60));
        assert_eq!(cfg.max_event_time_skew.0, Duration::from_secs(86_400));
        assert!(cfg.reserved_symbols().expect("none").is_empty());
    }

    #[test]
    fn priority_symbols_win_over_supported_pairs() {
        let cfg = parse(&["--supported-pairs", "btcusdt, ETHUSDT,BTCUSDT"]).expect("valid");
        let names: Vec<String> = cfg
            .reserved_symbols()
            .expect("valid")
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(names, ["BTCUSDT", "ETHUSDT"]);
        let cfg = parse(&["--supported-pairs", "A", "--priority-symbols", "B"]).expect("valid");
        assert_eq!(cfg.reserved_symbols().expect("valid")[0].as_str(), "B");
        let err = parse(&["--priority-symbols", "BTC-USDT"]).expect_err("bad symbol");
        assert!(err.starts_with("PRIORITY_SYMBOLS: `BTC-USDT`"), "{err}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = parse(&["--stats-interval", "soon"]).expect_err("bad duration");
        assert!(
            err.contains("STATS_INTERVAL") || err.contains("stats-interval"),
            "{err}"
        );
        let err = parse(&["--nats-subject", "a..b"]).expect_err("bad subject");
        assert!(err.starts_with("NATS_CONSUMER_SUBJECT:"), "{err}");
        let err = parse(&["--nats-queue-group", "a b"]).expect_err("bad group");
        assert!(err.starts_with("NATS_QUEUE_GROUP:"), "{err}");
        let err = parse(&["--stats-interval", "10ms"]).expect_err("too short");
        assert!(err.starts_with("STATS_INTERVAL:"), "{err}");
        let err = parse(&["--metrics-port", "99999"]).expect_err("port out of range");
        assert!(
            err.contains("METRICS_PORT") || err.contains("metrics-port"),
            "{err}"
        );
    }

    #[test]
    fn a_server_list_is_split_and_its_credentials_taken_out() {
        let cfg = parse(&[
            "--nats-url",
            "nats://u:p%40ss/?#@a:4222, tls://u:p%40ss/?#@b,c:4223",
        ])
        .expect("a comma-separated list is valid");
        let servers = cfg.nats.servers().expect("valid");
        let hosts: Vec<_> = servers
            .addrs
            .iter()
            .map(|a| (a.host().to_owned(), a.port()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("a".to_owned(), 4222),
                ("b".to_owned(), 4222),
                ("c".to_owned(), 4223)
            ]
        );
        assert!(servers.addrs.iter().all(|a| !a.has_user_pass()));
        assert_eq!(
            servers.credentials,
            Some(Credentials::UserPassword {
                user: "u".into(),
                password: "p@ss/?#".into()
            })
        );
        let token = parse(&["--nats-url", "nats://s3cret@h"]).expect("token");
        assert_eq!(
            token.nats.servers().expect("valid").credentials,
            Some(Credentials::Token("s3cret".into()))
        );
    }

    #[test]
    fn list_errors_name_the_element_and_never_a_password() {
        let err = parse(&["--nats-url", "nats://u:p1@a:4222,nats://u:p2@b:99999"])
            .expect_err("bad port in the second element");
        assert!(err.starts_with("NATS_URL: server 2 of 2"), "{err}");
        assert!(!err.contains("p1") && !err.contains("p2"), "{err}");
        let err =
            parse(&["--nats-url", "nats://u:p1@a,nats://u:p2@b"]).expect_err("two credentials");
        assert!(err.contains("different credentials"), "{err}");
        assert!(!err.contains("p1") && !err.contains("p2"), "{err}");
    }

    #[test]
    fn bad_url_error_does_not_leak_the_password() {
        let err =
            parse(&["--nats-url", "nats://admin:hunter2@bad host:4222"]).expect_err("bad url");
        assert!(err.starts_with("NATS_URL:"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
