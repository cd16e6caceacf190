//! The secrets check both schedulers share: generated secrets (reserved characters included)
//! in `MYSQL_URI` and `MONGODB_URL`, in every form the schedulers accept, must appear in none
//! of the start-up log, readiness JSON, `/metrics`, `/`, a config error or the final error.
//!
//! Each scheduler's test file calls [`never_leak_while_running`] and
//! [`never_leak_in_config_errors`] with its own binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, http_get};

/// Letters, digits and every reserved character but `,` (MongoDB host lists split on it).
const SECRET_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/?#[]@!$&'()*+;=%-._~";

/// A fresh secret of 12 to 27 characters from random bytes.
fn secret() -> String {
    let bytes: Vec<u8> = (0..2)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    let len = 12 + usize::from(bytes[0]) % 16;
    std::iter::once('Q')
        .chain(
            bytes[1..len]
                .iter()
                .map(|b| char::from(SECRET_CHARS[usize::from(*b) % SECRET_CHARS.len()])),
        )
        .collect()
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

fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        for form in [s.to_string(), encode(s)] {
            assert!(!text.contains(&form), "{what} leaks `{form}`:\n{text}");
        }
    }
}

/// The URL pair for `form`: plain, percent-encoded, SQLAlchemy and SRV spellings, host lists.
fn urls(form: usize, mysql_pw: &str, mongo_pw: &str, dead: u16) -> (String, String) {
    let mysql = match form % 3 {
        0 => format!("mysql://dm:{mysql_pw}@127.0.0.1:{dead}/petrosa_crypto"),
        1 => format!(
            "mysql+pymysql://dm:{}@127.0.0.1:{dead}/petrosa_crypto?charset=utf8mb4",
            encode(mysql_pw)
        ),
        _ => format!("mysql+pymysql://dm:{mysql_pw}@127.0.0.1:{dead}/petrosa_crypto"),
    };
    let mongo = match form % 4 {
        0 => format!(
            "mongodb://dm:{}@127.0.0.1:{dead}/dm_secrets",
            encode(mongo_pw)
        ),
        1 => format!("mongodb://dm:{mongo_pw}@127.0.0.1:{dead}/dm_secrets"),
        2 => format!(
            "mongodb://dm:{}@127.0.0.1:{dead},127.0.0.2:{dead}/dm_secrets?replicaSet=rs0",
            encode(mongo_pw)
        ),
        _ => format!(
            "mongodb+srv://dm:{}@cluster0.invalid/dm_secrets",
            encode(mongo_pw)
        ),
    };
    (mysql, mongo)
}

fn start(bin: &str, args: &[&str], envs: &[(&str, String)], log: &std::path::Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    Command::new(bin)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("spawn")
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `run` against unreachable databases with secret-bearing URLs: readiness, metrics, the logs
/// while it retries, and the lines it writes when SIGTERM stops it.
fn run_case(bin: &str, form: usize) {
    let (mysql_pw, mongo_pw) = (secret(), secret());
    let (mysql, mongo) = urls(form, &mysql_pw, &mongo_pw, free_port());
    let port = free_port();
    let log = std::env::temp_dir().join(format!(
        "{}-secrets-{}.log",
        name_of(bin),
        uuid::Uuid::new_v4().simple()
    ));
    let mut child = start(
        bin,
        &["run"],
        &[
            ("MYSQL_URI", mysql.clone()),
            ("MONGODB_URL", mongo.clone()),
            ("LEADER_ELECTION", "disabled".into()),
            ("SUPPORTED_PAIRS", "BTCUSDT".into()),
            ("PROBE_INTERVAL", "200ms".into()),
            ("DB_TIMEOUT", "1s".into()),
            ("SHUTDOWN_GRACE", "2s".into()),
            ("METRICS_PORT", port.to_string()),
            ("METRICS_HOST", "127.0.0.1".into()),
            (
                "LOG_FORMAT",
                if form.is_multiple_of(2) {
                    "text"
                } else {
                    "json"
                }
                .into(),
            ),
            ("LOG_LEVEL", "DEBUG".into()),
        ],
        &log,
    );
    // Some spellings are refused at start-up (the MongoDB driver wants an encoded password):
    // then the final error is what there is to check.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut ready, mut later, mut metrics, mut root) =
        (String::new(), String::new(), String::new(), String::new());
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if let Some((_, body)) = http_get(port, "/health/readiness") {
            ready = body;
            // Let a few probes fail so their errors reach readiness and the logs.
            std::thread::sleep(Duration::from_millis(1500));
            later = http_get(port, "/health/readiness")
                .map(|r| r.1)
                .unwrap_or_default();
            metrics = http_get(port, "/metrics").map(|r| r.1).unwrap_or_default();
            root = http_get(port, "/").map(|r| r.1).unwrap_or_default();
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            wait_exit(&mut child, Duration::from_secs(20));
            break;
        }
        assert!(Instant::now() < deadline, "neither up nor exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(!logs.is_empty(), "the process logged nothing");
    let texts: [(&str, &String); 5] = [
        ("readiness", &ready),
        ("readiness after probes", &later),
        ("metrics", &metrics),
        ("root", &root),
        ("logs", &logs),
    ];
    for (what, text) in texts {
        assert_hidden(
            &format!("form {form} {what} ({mysql} / {mongo})"),
            text,
            &[&mysql_pw, &mongo_pw],
        );
    }
}

/// The binary's file name, for log file names.
fn name_of(bin: &str) -> &str {
    std::path::Path::new(bin)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("scheduler")
}

/// `bin run` with secret-bearing URLs to unreachable databases, in 12 URL forms: readiness,
/// metrics, `/` and the logs (DEBUG) while it retries, and the lines it writes on SIGTERM.
///
/// # Panics
/// When a secret appears in any of them (the test failing).
pub fn never_leak_while_running(bin: &str) {
    for form in 0..12 {
        run_case(bin, form);
    }
}

/// `bin run` refused at start-up (a bad setting, a bad MySQL port, a bad scheme) with
/// secret-bearing URLs in 24 forms: the config error must not show the secrets.
///
/// # Panics
/// When the process exits 0 or its output shows a secret (the test failing).
pub fn never_leak_in_config_errors(bin: &str) {
    for form in 0..24 {
        let (mysql_pw, mongo_pw) = (secret(), secret());
        let (mysql, mongo) = urls(form, &mysql_pw, &mongo_pw, 3306);
        // A bad setting elsewhere, a bad MySQL port, a bad scheme: each refused at start-up.
        for (mysql, extra) in [
            (mysql.clone(), ("DB_TIMEOUT", "soon")),
            (mysql.replace(":3306/", ":99999/"), ("LOG_FORMAT", "text")),
            (
                mysql.replacen("mysql", "postgres", 1),
                ("LOG_FORMAT", "text"),
            ),
        ] {
            let log = std::env::temp_dir().join(format!(
                "{}-cfg-{}.log",
                name_of(bin),
                uuid::Uuid::new_v4().simple()
            ));
            let mut child = start(
                bin,
                &["run"],
                &[
                    ("MYSQL_URI", mysql.clone()),
                    ("MONGODB_URL", mongo.clone()),
                    ("LEADER_ELECTION", "disabled".into()),
                    ("METRICS_PORT", free_port().to_string()),
                    ("METRICS_HOST", "127.0.0.1".into()),
                    (extra.0, extra.1.into()),
                ],
                &log,
            );
            let status = wait_exit(&mut child, Duration::from_secs(20));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            assert!(!status.success(), "{mysql}: {text}");
            assert_hidden(
                &format!("config error ({mysql})"),
                &text,
                &[&mysql_pw, &mongo_pw],
            );
        }
    }
}
