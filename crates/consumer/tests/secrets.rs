//! Generated secrets (reserved characters included) in every NATS URL form dm-consumer
//! accepts, against real nats-servers that require them: the consumer authenticates with
//! them, and none appears in the start-up log, readiness JSON, `/metrics`, a config error or
//! the final log lines.

mod support;

use std::time::Duration;

use rand::Rng;
use support::{Consumer, NatsServer, unique_subject};

// Generous: the wait bounds a slow start on a busy 2-core CI machine (one run needed more than
// 20 s under load); it is never the thing measured.
const WAIT: Duration = Duration::from_secs(90);

/// Letters, digits and every reserved character but the list separator `,`.
const PASSWORD_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/?#[]@!$&'()*+;=%-._~";

fn secret(rng: &mut impl Rng, token: bool) -> String {
    let len = rng.random_range(12..28);
    let mut s = String::from("Z");
    while s.len() < len {
        let c = char::from(PASSWORD_CHARS[rng.random_range(0..PASSWORD_CHARS.len())]);
        // A token has no `:` (it would read as user:password).
        let splits_token = token && c == ':';
        // `%` and two hex digits is the URL's own escape: written raw, it means another
        // character, so a raw secret never holds one (form 2 checks the escaped `%`).
        let escapes = s.ends_with('%') && c.is_ascii_hexdigit();
        if !splits_token && !escapes {
            s.push(c);
        }
    }
    s
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

fn assert_hidden(what: &str, text: &str, secret: &str) {
    for form in [secret.to_owned(), encode(secret)] {
        assert!(!text.contains(&form), "{what} leaks `{form}`:\n{text}");
    }
}

/// One case: a server requiring `secret`, a URL form carrying it, every output checked.
async fn check_case(form: usize, secret: &str) {
    let token = form % 2 == 1;
    let server = if token {
        NatsServer::start_with(&["--auth", secret])
    } else {
        NatsServer::start_with(&["--user", "dm", "--pass", secret])
    };
    let dead = testkit::free_port();
    let userinfo = if token {
        secret.to_owned()
    } else {
        format!("dm:{secret}")
    };
    let url = match form {
        0 | 1 => format!("nats://{userinfo}@127.0.0.1:{}", server.port),
        2 => format!("nats://dm:{}@127.0.0.1:{}", encode(secret), server.port),
        3 => format!("{userinfo}@127.0.0.1:{}", server.port),
        // A cluster list: a dead member first, then the live one, both with credentials.
        _ => format!(
            "nats://{userinfo}@127.0.0.1:{dead},nats://{userinfo}@127.0.0.1:{}",
            server.port
        ),
    };
    let mut consumer = Consumer::start(&url, &unique_subject("secrets"), &[]);
    consumer.wait_readiness(200, WAIT).await;
    let (_, ready) = consumer.get("/health/readiness").expect("readiness");
    let (_, metrics) = consumer.get("/metrics").expect("metrics");
    drop(server);
    consumer.wait_readiness(503, WAIT).await;
    let (_, unready) = consumer.get("/health/readiness").expect("readiness");
    let status = consumer.terminate(WAIT);
    let logs = consumer.logs();
    assert!(status.success(), "form {form}: {logs}");
    assert!(logs.contains("dm-consumer started"), "{logs}");
    for (what, text) in [
        ("readiness", &ready),
        ("readiness while down", &unready),
        ("metrics", &metrics),
        ("logs", &logs),
    ] {
        assert_hidden(&format!("form {form} {what}"), text, secret);
    }
}

#[tokio::test]
async fn generated_secrets_authenticate_and_never_leak() {
    let mut rng = rand::rng();
    // Every form twice, each with a fresh secret.
    for form in (0..5).chain(0..5) {
        let s = secret(&mut rng, form % 2 == 1);
        check_case(form, &s).await;
    }
}

#[test]
fn generated_secrets_never_leak_in_config_errors() {
    let mut rng = rand::rng();
    for _ in 0..20 {
        let (a, b) = (secret(&mut rng, false), secret(&mut rng, true));
        for url in [
            format!("nats://u:{a}@h:4222,nats://{b}@h:99999"),
            format!("nats://u:{a}@h:4222,nats://u:{b}@h2:4222"),
            format!("nats://u:{a}@bad host:4222"),
            format!("bogus://{b}@h"),
        ] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_dm-consumer"))
                .env_clear()
                .env("NATS_URL", &url)
                .output()
                .expect("running dm-consumer");
            assert_eq!(out.status.code(), Some(2), "{url}");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("NATS_URL"), "{text}");
            assert_hidden("config error", &text, &a);
            assert_hidden("config error", &text, &b);
        }
    }
}
