//! Connection URLs carry passwords and tokens: these types and functions keep them out of every
//! log line, error message, metric label and HTTP response.
//!
//! One rule covers every URL form the services accept (`nats://`, `tls://`, `mysql://`,
//! `mysql+pymysql://`, `mongodb://`, `mongodb+srv://`, comma-separated server lists):
//! the userinfo of an element runs from after `scheme://` to the **last** `@` of that element,
//! so a password with an unencoded `@`, `/`, `?`, `#` or `:` is hidden whole. `user:password`
//! keeps the user (`user:***`); a userinfo without `:` may be a NATS token and is hidden whole
//! (`***`). Elements of a list are separated by a comma followed by `scheme://`; the one
//! ambiguous input is a password that itself contains `,scheme://`.

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
        redact_url(&self.0)
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

/// Hides the userinfo of every URL in free text (see the module doc for the rule).
///
/// Works on free text, so a driver error that quotes its URL is safe to log: each
/// whitespace-separated word that contains `://` is redacted as a URL (or a list of them).
/// Hosts are kept, so the line still says where we tried to connect.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, tail) = rest.split_at(word_end);
        redact_word(word, &mut out);
        let space_end = tail
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(tail.len());
        out.push_str(&tail[..space_end]);
        rest = &tail[space_end..];
    }
    out
}

/// Hides the userinfo of a value known to be a URL or a comma-separated list of them, where
/// an element may omit its scheme (`user:pass@host:4222`, as NATS clients accept). Unlike
/// [`redact_text`], whitespace does not end the URL.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    if url.contains("://") {
        redact_word(url, &mut out);
    } else if let Some(at) = url.rfind('@') {
        push_hidden(&url[..at], &mut out);
        out.push_str(&url[at..]);
    } else {
        out.push_str(url);
    }
    out
}

/// One URL element split by the last-`@` rule: `scheme://` (if any), userinfo (if any), and
/// the rest (`host[:port][/path][?query]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The scheme without `://`, if the element has one.
    pub scheme: Option<&'a str>,
    /// Everything between `://` and the last `@`, still percent-encoded.
    pub userinfo: Option<&'a str>,
    /// Everything after the last `@` (or after `://` without userinfo).
    pub rest: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits one element (not a list).
    pub fn split(element: &'a str) -> UrlParts<'a> {
        let (scheme, after) = match element.split_once("://") {
            Some((s, a)) => (Some(s), a),
            None => (None, element),
        };
        match after.rfind('@') {
            Some(at) => UrlParts {
                scheme,
                userinfo: Some(&after[..at]),
                rest: &after[at + 1..],
            },
            None => UrlParts {
                scheme,
                userinfo: None,
                rest: after,
            },
        }
    }

    /// The element without its userinfo: safe to hand to a parser whose errors may quote it.
    pub fn without_userinfo(&self) -> String {
        match self.scheme {
            Some(s) => format!("{s}://{}", self.rest),
            None => self.rest.to_owned(),
        }
    }
}

/// Credentials carried in a URL's userinfo, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `user:password@`.
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// `token@` (NATS token authentication).
    Token(String),
}

impl Credentials {
    /// Reads a userinfo (`user:password` or `token`), percent-decoding each part.
    pub fn from_userinfo(userinfo: &str) -> Credentials {
        match userinfo.split_once(':') {
            Some((user, password)) => Credentials::UserPassword {
                user: percent_decode(user),
                password: percent_decode(password),
            },
            None => Credentials::Token(percent_decode(userinfo)),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::UserPassword { user, .. } => write!(f, "UserPassword({user}:***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept as is. Invalid UTF-8
/// after decoding is replaced, never an error (the server will refuse wrong credentials).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Redacts one word that may hold URLs: the userinfo of each element up to the word's last
/// `@` is hidden, element by element.
fn redact_word(word: &str, out: &mut String) {
    let Some(pos) = word.find("://") else {
        out.push_str(word);
        return;
    };
    let (head, after) = word.split_at(pos + 3);
    out.push_str(head);
    let Some(last_at) = after.rfind('@') else {
        out.push_str(after);
        return;
    };
    let (region, tail) = after.split_at(last_at);
    let mut piece_start = 0;
    for boundary in element_boundaries(region) {
        // A complete element before the boundary: its own userinfo ends at its last `@`.
        let piece = &region[piece_start..boundary];
        let (scheme_part, body) = split_scheme(piece, piece_start > 0);
        out.push_str(scheme_part);
        match body.rfind('@') {
            Some(at) => {
                push_hidden(&body[..at], out);
                out.push_str(&body[at..]);
            }
            None => out.push_str(body),
        }
        piece_start = boundary;
    }
    let (scheme_part, userinfo) = split_scheme(&region[piece_start..], piece_start > 0);
    out.push_str(scheme_part);
    push_hidden(userinfo, out);
    out.push_str(tail);
}

/// Byte offsets in `region` where a new list element starts: after a `,` that is followed by
/// `scheme://`. Each returned offset points just past the comma.
fn element_boundaries(region: &str) -> Vec<usize> {
    let bytes = region.as_bytes();
    let mut found = Vec::new();
    for (i, _) in region.match_indices(',') {
        let start = i + 1;
        let scheme_len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'))
            .count();
        let first_is_letter = bytes.get(start).is_some_and(u8::is_ascii_alphabetic);
        if first_is_letter && region[start + scheme_len..].starts_with("://") {
            found.push(start);
        }
    }
    found
}

/// Splits `scheme://` from the rest of a piece that starts a list element. The first piece
/// (whose scheme was already written) is all body, even if its password contains `://`.
fn split_scheme(piece: &str, starts_element: bool) -> (&str, &str) {
    match piece.find("://") {
        Some(pos) if starts_element => piece.split_at(pos + 3),
        _ => ("", piece),
    }
}

/// Appends the hidden form of a userinfo: `user:***` when it has a password, `***` otherwise
/// (a bare userinfo may be a token). An empty userinfo stays empty.
fn push_hidden(userinfo: &str, out: &mut String) {
    if userinfo.is_empty() {
        return;
    }
    match userinfo.split_once(':') {
        Some((user, _)) => {
            out.push_str(user);
            out.push_str(":***");
        }
        None => out.push_str("***"),
    }
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
    fn unencoded_reserved_characters_in_password_are_hidden() {
        for pw in [
            "pa/ss",
            "pa?ss",
            "pa#ss",
            "a/b?c#d@e:f",
            "x,y",
            "p@/#?",
            "a://b",
        ] {
            let url = format!("mysql://root:{pw}@host:3306/db?x=1");
            assert_eq!(
                redact_text(&url),
                "mysql://root:***@host:3306/db?x=1",
                "{pw}"
            );
            assert_eq!(
                redact_url(&url),
                "mysql://root:***@host:3306/db?x=1",
                "{pw}"
            );
        }
    }

    #[test]
    fn nats_token_is_hidden_whole() {
        assert_eq!(
            redact_text("connecting to nats://s3cretTOKEN@nats:4222"),
            "connecting to nats://***@nats:4222"
        );
        assert_eq!(redact_url("s3cretTOKEN@nats:4222"), "***@nats:4222");
    }

    #[test]
    fn every_element_of_a_server_list_is_redacted() {
        assert_eq!(
            redact_text("nats://u:p1@a:4222,nats://u:p2@b:4222,nats://c:4222"),
            "nats://u:***@a:4222,nats://u:***@b:4222,nats://c:4222"
        );
        assert_eq!(
            redact_url("nats://T1@a,tls://u:p/2@b"),
            "nats://***@a,tls://u:***@b"
        );
        // Elements without a scheme: everything up to the last `@` is hidden.
        let red = redact_url("nats://u:p1@a,u:p2@b");
        assert!(!red.contains("p1") && !red.contains("p2"), "{red}");
        let red = redact_url("u:p1@a,u:p2@b");
        assert!(!red.contains("p1") && !red.contains("p2"), "{red}");
    }

    #[test]
    fn mongodb_host_lists_keep_their_hosts() {
        assert_eq!(
            redact_text("mongodb://u:pw@h1:27017,h2:27017/db?replicaSet=rs"),
            "mongodb://u:***@h1:27017,h2:27017/db?replicaSet=rs"
        );
    }

    #[test]
    fn urls_without_userinfo_are_unchanged() {
        for s in [
            "nats://127.0.0.1:4222",
            "nats://a:4222,nats://b:4222",
            "no url here",
            "a://",
            "",
            "  spaced  out\ttext\n",
        ] {
            assert_eq!(redact_text(s), s);
        }
        assert_eq!(redact_text("://x:y@z"), "://x:***@z");
        assert_eq!(redact_text("mongodb://user@h/db"), "mongodb://***@h/db");
    }

    #[test]
    fn secret_url_never_prints_the_password() {
        let url = SecretUrl::new("nats://admin:hunter2@nats:4222");
        assert_eq!(url.to_string(), "nats://admin:***@nats:4222");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "nats://admin:hunter2@nats:4222");
        let spaced = SecretUrl::new("nats://admin:hun ter2@nats:4222");
        assert!(!spaced.to_string().contains("hun"), "{spaced}");
    }

    #[test]
    fn parts_follow_the_last_at_rule() {
        let p = UrlParts::split("nats://u:p@/?#x@host:4222");
        assert_eq!(p.scheme, Some("nats"));
        assert_eq!(p.userinfo, Some("u:p@/?#x"));
        assert_eq!(p.rest, "host:4222");
        assert_eq!(p.without_userinfo(), "nats://host:4222");
        let p = UrlParts::split("tok@h");
        assert_eq!((p.scheme, p.userinfo, p.rest), (None, Some("tok"), "h"));
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(
            Credentials::from_userinfo("us%65r:p%40ss:w%zz"),
            Credentials::UserPassword {
                user: "user".into(),
                password: "p@ss:w%zz".into()
            }
        );
        assert_eq!(
            Credentials::from_userinfo("t%2Fk"),
            Credentials::Token("t/k".into())
        );
        assert!(!format!("{:?}", Credentials::from_userinfo("u:pw")).contains("pw"));
    }
}
