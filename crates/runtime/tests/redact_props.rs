//! Generated secrets in every URL form we accept: none survives redaction, in free text or as
//! a value.

use proptest::prelude::*;
use runtime::redact::{SecretUrl, UrlParts, redact_text, redact_url};

/// Characters a password may hold unencoded: letters, digits and every reserved character
/// except the list separator `,` (a NATS list splits on it before anything else).
const PASSWORD_CHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/?#[]@!$&'()*+;=%-._~";

/// A token cannot contain `:` (it would read as `user:password`).
const TOKEN_CHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/?#[]@!$&'()*+;=%-._~";

fn secret(chars: &'static str) -> impl Strategy<Value = String> {
    let chars: Vec<char> = chars.chars().collect();
    prop::collection::vec(prop::sample::select(chars), 10..28)
        .prop_map(|v| format!("S{}", v.into_iter().collect::<String>()))
}

fn encode(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", c as u32)
            }
        })
        .collect()
}

/// A URL with `pw` in one of the forms the services accept.
fn url_form(form: u8, pw: &str, token: &str) -> String {
    match form % 9 {
        0 => format!("nats://user:{pw}@nats-0.nats:4222"),
        1 => format!("nats://{token}@nats:4222"),
        2 => format!("nats://u:{pw}@a:4222,nats://u:{pw}@b:4222,nats://c:4222"),
        3 => format!("tls://{token}@a:4222,nats://{token}@b"),
        4 => format!("mysql://petrosa:{pw}@db:3306/petrosa_crypto"),
        5 => format!(
            "mysql+pymysql://petrosa:{}@db/petrosa_crypto?charset=utf8mb4",
            encode(pw)
        ),
        6 => format!("mongodb://admin:{pw}@h1:27017,h2:27017/dm?replicaSet=rs0"),
        7 => format!(
            "mongodb+srv://admin:{}@cluster0.example.net/?retryWrites=true",
            encode(pw)
        ),
        _ => format!("nats://u:{pw}@a,u:{pw}@b"),
    }
}

fn assert_hidden(out: &str, secrets: &[&str]) -> Result<(), TestCaseError> {
    for s in secrets {
        prop_assert!(!out.contains(s), "`{}` leaks in `{}`", s, out);
        prop_assert!(
            !out.contains(&encode(s)),
            "`{}` leaks encoded in `{}`",
            s,
            out
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn no_generated_secret_survives(
        form in any::<u8>(),
        pw in secret(PASSWORD_CHARS),
        token in secret(TOKEN_CHARS),
        before in "[a-z ]{0,12}",
        after in "[a-z :]{0,12}",
    ) {
        let url = url_form(form, &pw, &token);
        let text = format!("{before} error connecting to {url}: {after}");
        assert_hidden(&redact_text(&text), &[&pw, &token])?;
        assert_hidden(&redact_url(&url), &[&pw, &token])?;
        let wrapped = SecretUrl::new(url.clone());
        assert_hidden(&wrapped.to_string(), &[&pw, &token])?;
        assert_hidden(&format!("{wrapped:?}"), &[&pw, &token])?;
        // The hosts are still there, so a line says where we tried to connect.
        let last = url.rsplit(',').next().unwrap_or(&url);
        let host = UrlParts::split(last).rest.split([':', '/']).next().unwrap_or("");
        prop_assert!(redact_url(&url).contains(host), "{} lost {}", redact_url(&url), host);
    }
}
