//! dm-api's settings, parsed once in `main` and validated before anything connects.

use std::net::IpAddr;

use runtime::config::{ConfigError, LogArgs, Seconds, ServiceArgs, invalid};
use runtime::redact::SecretUrl;

/// dm-api's command line and environment.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "dm-api",
    version,
    about = "The data manager's results over HTTP: JSON API, OpenAPI document and status page"
)]
pub struct Config {
    /// The results database the schedulers write; the database is the URL path (default
    /// `petrosa_data_manager`). Never logged unredacted.
    #[arg(
        long = "mongodb-url",
        env = "MONGODB_URL",
        default_value = "mongodb://localhost:27017/",
        hide_env_values = true
    )]
    pub mongodb_url: SecretUrl,

    /// Address the HTTP server binds to (API, page, `/metrics`, `/health/*`).
    #[arg(long = "api-host", env = "API_HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,

    /// Port of the HTTP server.
    #[arg(long = "api-port", env = "API_PORT", default_value_t = 8000)]
    pub port: u16,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub log: LogArgs,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,

    /// Connecting to MongoDB (server selection), per attempt.
    #[arg(long = "db-timeout", env = "DB_TIMEOUT", default_value = "5s")]
    pub db_timeout: Seconds,

    /// Longest a query may run (sent as `maxTimeMS`); a slower one answers 503.
    #[arg(
        long = "query-timeout",
        env = "API_QUERY_TIMEOUT",
        default_value = "5s"
    )]
    pub query_timeout: Seconds,

    /// Requests served at once; more wait for a slot.
    #[arg(
        long = "max-concurrency",
        env = "API_MAX_CONCURRENCY",
        default_value_t = 256
    )]
    pub max_concurrency: usize,

    /// The dataset list shows every dataset audited within this long of the newest audit (so
    /// a half-written cycle never hides datasets); datasets no longer audited drop out.
    #[arg(
        long = "datasets-lookback",
        env = "API_DATASETS_LOOKBACK",
        default_value = "15m"
    )]
    pub lookback: Seconds,

    /// How often the status page reloads itself.
    #[arg(long = "page-refresh", env = "API_PAGE_REFRESH", default_value = "30s")]
    pub page_refresh: Seconds,

    /// Period of the stats line.
    #[arg(long = "stats-interval", env = "STATS_INTERVAL", default_value = "60s")]
    pub stats_interval: Seconds,
}

impl Config {
    /// Checks the rules clap cannot.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("DB_TIMEOUT", self.db_timeout),
            ("API_QUERY_TIMEOUT", self.query_timeout),
            ("API_PAGE_REFRESH", self.page_refresh),
            ("STATS_INTERVAL", self.stats_interval),
            ("PROBE_INTERVAL", self.service.probe_interval),
        ];
        for (var, value) in positive {
            if value.0.as_secs_f64() < 1.0 {
                return Err(invalid(var, "must be at least 1s"));
            }
        }
        if self.max_concurrency == 0 {
            return Err(invalid("API_MAX_CONCURRENCY", "must be at least 1"));
        }
        if !self.mongodb_url.expose().starts_with("mongodb://")
            && !self.mongodb_url.expose().starts_with("mongodb+srv://")
        {
            return Err(invalid(
                "MONGODB_URL",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_match_the_documentation() {
        let c = Config::try_parse_from(["dm-api"]).expect("defaults parse");
        assert_eq!(c.port, 8000);
        assert_eq!(c.lookback.0.as_secs(), 900);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_the_password() {
        let c = Config::try_parse_from(["dm-api", "--query-timeout", "0"]).expect("parses");
        assert_eq!(c.validate().expect_err("zero").var, "API_QUERY_TIMEOUT");
        let c = Config::try_parse_from(["dm-api", "--mongodb-url", "http://u:s3cret@h"])
            .expect("parses");
        let e = c.validate().expect_err("scheme");
        assert_eq!(e.var, "MONGODB_URL");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
