//! `MYSQL_URI` as production writes it: `mysql://` or SQLAlchemy's `mysql+<driver>://`, with a
//! percent-encoded user and password and the database as the path; the `+<driver>` part is
//! dropped.

use percent_encoding::percent_decode_str;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};

/// The parts of a MySQL URL, decoded. `Debug` hides the password.
#[derive(Clone)]
pub struct MysqlUri {
    /// Host name or address.
    pub host: String,
    /// Port (3306 when absent).
    pub port: u16,
    /// Decoded user name.
    pub user: String,
    /// Decoded password, if any.
    pub password: Option<String>,
    /// The path segment, if any.
    pub database: Option<String>,
    /// `ssl_mode`/`ssl-mode` when given; other query parameters (SQLAlchemy's `charset=…` is
    /// mapped, driver-specific ones are ignored) never fail the parse.
    pub ssl_mode: Option<MySqlSslMode>,
    /// `charset` when given.
    pub charset: Option<String>,
}

impl std::fmt::Debug for MysqlUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlUri")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// A `MYSQL_URI` that cannot be used. The message never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MysqlUriError {
    /// The scheme is not `mysql` or `mysql+<driver>`.
    #[error("MYSQL_URI: the scheme must be mysql:// or mysql+<driver>://")]
    Scheme,
    /// The rest does not parse as a URL.
    #[error("MYSQL_URI: not a URL: {0}")]
    Syntax(String),
    /// No host.
    #[error("MYSQL_URI: no host")]
    NoHost,
    /// A query parameter has a value we cannot map.
    #[error("MYSQL_URI: unsupported value for {param}")]
    Param {
        /// The parameter.
        param: &'static str,
    },
}

impl MysqlUri {
    /// Parses a URL.
    ///
    /// # Errors
    /// [`MysqlUriError`] for a wrong scheme, a missing host or a malformed URL.
    pub fn parse(raw: &str) -> Result<MysqlUri, MysqlUriError> {
        let raw = raw.trim();
        let (scheme, rest) = raw.split_once("://").ok_or(MysqlUriError::Scheme)?;
        let base = scheme.split_once('+').map_or(scheme, |(b, _driver)| b);
        if !base.eq_ignore_ascii_case("mysql") && !base.eq_ignore_ascii_case("mariadb") {
            return Err(MysqlUriError::Scheme);
        }
        // The userinfo ends at the last `@` (the shared redaction rule), so a password with an
        // unencoded `/`, `?`, `#` or `@` is read whole and never reaches the URL parser.
        let parts = runtime::redact::UrlParts::split(rest);
        let url = url::Url::parse(&format!("mysql://{}", parts.rest))
            .map_err(|e| MysqlUriError::Syntax(e.to_string()))?;
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(MysqlUriError::NoHost)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let database = Some(decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty());
        let mut ssl_mode = None;
        let mut charset = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "ssl_mode" | "ssl-mode" | "sslmode" => {
                    ssl_mode = Some(
                        value
                            .to_ascii_lowercase()
                            .replace('_', "-")
                            .parse::<MySqlSslMode>()
                            .map_err(|_| MysqlUriError::Param { param: "ssl_mode" })?,
                    );
                }
                "charset" => charset = Some(value.into_owned()),
                _ => {} // driver options of pymysql & co: not ours to interpret
            }
        }
        Ok(MysqlUri {
            host,
            port: url.port().unwrap_or(3306),
            user: decode(
                parts
                    .userinfo
                    .map_or("", |u| u.split_once(':').map_or(u, |p| p.0)),
            ),
            password: parts
                .userinfo
                .and_then(|u| u.split_once(':'))
                .map(|p| decode(p.1)),
            database,
            ssl_mode,
            charset,
        })
    }

    /// Connection options for sqlx.
    pub fn to_options(&self) -> MySqlConnectOptions {
        let mut opts = MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(&self.user);
        if let Some(p) = &self.password {
            opts = opts.password(p);
        }
        if let Some(db) = &self.database {
            opts = opts.database(db);
        }
        if let Some(mode) = self.ssl_mode {
            opts = opts.ssl_mode(mode);
        }
        if let Some(cs) = &self.charset {
            opts = opts.charset(cs);
        }
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_form_is_accepted_and_credentials_decoded() {
        let u = MysqlUri::parse("mysql+pymysql://petrosa:p%40ss%3Aw0rd@db.example:3307/petrosa_crypto?charset=utf8mb4&autocommit=true")
            .expect("valid");
        assert_eq!(u.host, "db.example");
        assert_eq!(u.port, 3307);
        assert_eq!(u.user, "petrosa");
        assert_eq!(u.password.as_deref(), Some("p@ss:w0rd"));
        assert_eq!(u.database.as_deref(), Some("petrosa_crypto"));
        assert_eq!(u.charset.as_deref(), Some("utf8mb4"));
        let opts = u.to_options();
        assert_eq!(opts.get_database(), Some("petrosa_crypto"));
        assert_eq!(opts.get_port(), 3307);
    }

    #[test]
    fn plain_form_defaults_port_and_allows_no_password() {
        let u = MysqlUri::parse("mysql://root@127.0.0.1/test").expect("valid");
        assert_eq!((u.port, u.password.clone()), (3306, None));
        assert_eq!(u.database.as_deref(), Some("test"));
        let no_db = MysqlUri::parse("mysql://root@h:3306/").expect("valid");
        assert_eq!(no_db.database, None);
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_rejected() {
        assert!(matches!(
            MysqlUri::parse("postgres://u:p@h/db"),
            Err(MysqlUriError::Scheme)
        ));
        assert!(matches!(
            MysqlUri::parse("h:3306/db"),
            Err(MysqlUriError::Scheme)
        ));
        assert!(MysqlUri::parse("mysql://").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let u = MysqlUri::parse("mysql://u:hunter2@h/db").expect("valid");
        assert!(!format!("{u:?}").contains("hunter2"));
        let e = MysqlUri::parse("mysql+pymysql://u:hunter2@h:notaport/db").expect_err("bad port");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
