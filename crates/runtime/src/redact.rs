//! Connection URLs carry passwords: these types and functions keep them out of every log line,
//! error message, metric label and HTTP response.

use std::fmt;
use std::str::FromStr;

/// A connection URL whose `Debug` and `Display` hide the password (`user:***@host`).
/// The real value is reachable only through [`SecretUrl::expose`], at the call that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The unredacted URL, for the driver call that needs it. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The redacted form.
    pub fn redacted(&self) -> String {
        redact_text(&self.0)
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretUrl(s.to_owned()))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces the password of every `scheme://user:password@` in `text` with `***`.
///
/// Works on free text, so a driver error that quotes its URL is safe to log. A user without
/// a password is kept; the host is kept, so the line still says where we tried to connect.
/// Passwords may contain `@` (unencoded): the userinfo ends at the last `@` before the next
/// `/`, `?`, `#` or whitespace.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_replaced_and_user_and_host_kept() {
        assert_eq!(
            redact_text("mysql+pymysql://petrosa:s3cr3t@db.example:3306/petrosa_crypto"),
            "mysql+pymysql://petrosa:***@db.example:3306/petrosa_crypto"
        );
    }

    #[test]
    fn every_url_in_free_text_is_redacted() {
        let text =
            "failed nats://u:p1@a:4222 then mongodb+srv://x:p%40ss@cluster0.net/?retryWrites=true";
        let red = redact_text(text);
        assert!(!red.contains("p1") && !red.contains("p%40ss"), "{red}");
        assert_eq!(
            red,
            "failed nats://u:***@a:4222 then mongodb+srv://x:***@cluster0.net/?retryWrites=true"
        );
    }

    #[test]
    fn unencoded_at_in_password_is_still_hidden() {
        assert_eq!(
            redact_text("mysql://root:p@ss@host/db"),
            "mysql://root:***@host/db"
        );
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        for s in [
            "nats://127.0.0.1:4222",
            "mongodb://user@h/db",
            "no url here",
            "a://",
            "://x:y@z",
        ] {
            let expected = if s == "://x:y@z" { "://x:***@z" } else { s };
            assert_eq!(redact_text(s), expected);
        }
    }

    #[test]
    fn secret_url_never_prints_the_password() {
        let url = SecretUrl::new("nats://admin:hunter2@nats:4222");
        assert_eq!(url.to_string(), "nats://admin:***@nats:4222");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "nats://admin:hunter2@nats:4222");
    }
}
