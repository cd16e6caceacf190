//! The redaction routine on arbitrary text (never panics) and on URLs built around a fuzzed
//! secret, in every form we accept: the secret never survives.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The module is plain std code; including its source keeps runtime's server dependencies
// (tokio, axum, …) out of the instrumented build.
#[path = "../../crates/runtime/src/redact.rs"]
#[allow(dead_code)]
mod redact;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = redact::redact_text(&text);
    let _ = redact::redact_url(&text);
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    // A secret as the rule defines one: no whitespace, no list separator; a token has no `:`.
    let token = form % 2 == 1;
    let secret: String = String::from_utf8_lossy(rest)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',' && !(token && *c == ':'))
        .collect();
    if secret.chars().count() < 6 {
        return;
    }
    let secret = format!("Z{secret}");
    let userinfo = if token {
        secret.clone()
    } else {
        format!("u:{secret}")
    };
    let url = match form % 8 {
        0 | 1 => format!("nats://{userinfo}@nats:4222"),
        2 | 3 => format!("nats://{userinfo}@a:4222,nats://{userinfo}@b:4222"),
        4 | 5 => format!("mysql+pymysql://{userinfo}@db:3306/petrosa?x=1"),
        _ => format!("mongodb+srv://{userinfo}@cluster0.example.net/dm"),
    };
    for out in [
        redact::redact_text(&format!("error: {url} refused")),
        redact::redact_url(&url),
    ] {
        assert!(!out.contains(&secret), "`{secret}` survives in `{out}`");
    }
});
