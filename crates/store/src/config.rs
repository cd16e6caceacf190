//! The argument group every scheduler flattens in for its databases and symbols, and the
//! timeframe list they all parse.

use runtime::config::{ConfigError, Seconds, invalid, list};
use runtime::redact::SecretUrl;

use crate::Timeframe;

/// Where the klines come from, where results go, and which symbols.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The extractor's MySQL (`mysql://` or SQLAlchemy `mysql+pymysql://`); never logged.
    #[arg(
        long = "mysql-uri",
        env = "MYSQL_URI",
        default_value = "mysql://root@localhost:3306/petrosa_data_manager",
        hide_env_values = true
    )]
    pub mysql_uri: SecretUrl,

    /// Where results go; the database is the URL path (default `petrosa_data_manager`).
    #[arg(
        long = "mongodb-url",
        env = "MONGODB_URL",
        default_value = "mongodb://localhost:27017/",
        hide_env_values = true
    )]
    pub mongodb_url: SecretUrl,

    /// Symbols (comma-separated), in the order they are processed (dm-auditor: used when
    /// AUDIT_SYMBOLS is unset).
    #[arg(
        long = "supported-pairs",
        env = "SUPPORTED_PAIRS",
        default_value = "BTCUSDT,ETHUSDT,BNBUSDT,ADAUSDT,SOLUSDT"
    )]
    pub supported_pairs: String,

    /// Timeout of one database call (a scan: per row).
    #[arg(long = "db-timeout", env = "DB_TIMEOUT", default_value = "30s")]
    pub db_timeout: Seconds,
}

impl StoreArgs {
    /// Checks the database call timeout and that MYSQL_URI parses.
    ///
    /// # Errors
    /// [`ConfigError`] naming `DB_TIMEOUT` or `MYSQL_URI` (the URI's secret redacted).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.db_timeout.0.is_zero() {
            return Err(invalid("DB_TIMEOUT", "must be > 0"));
        }
        crate::mysql_url::MysqlUri::parse(self.mysql_uri.expose())
            .map_err(|e| invalid("MYSQL_URI", e.to_string()))?;
        Ok(())
    }
}

/// The timeframes of a comma-separated list (case-sensitive), in order, without repeats.
///
/// # Errors
/// [`ConfigError`] naming `var` for an unknown timeframe or an empty list.
pub fn timeframes(s: &str, var: &'static str) -> Result<Vec<Timeframe>, ConfigError> {
    let mut timeframes = Vec::new();
    for t in list(s) {
        let tf: Timeframe = t
            .parse()
            .map_err(|e: crate::timeframe::BadTimeframe| invalid(var, e.to_string()))?;
        if !timeframes.contains(&tf) {
            timeframes.push(tf);
        }
    }
    if timeframes.is_empty() {
        return Err(invalid(var, "no timeframe given"));
    }
    Ok(timeframes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeframes_keep_order_and_drop_repeats() {
        let tfs = timeframes("1h, 5m,1h", "X").expect("valid");
        let labels: Vec<&str> = tfs.iter().map(|t| t.label()).collect();
        assert_eq!(labels, ["1h", "5m"]);
        assert_eq!(timeframes(" , ", "X").expect_err("empty").var, "X");
    }
}
