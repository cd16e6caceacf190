//! The tracing subscriber: JSON or text lines on stdout, filtered by `LOG_LEVEL`.

use tracing_subscriber::EnvFilter;

use crate::config::{LogArgs, LogFormat};

/// Libraries that log connection chatter at INFO; they are held to WARN so the steady state
/// stays at one stats line a minute, whatever `LOG_LEVEL` says, unless it names one of them.
/// async-nats is off: it logs an ERROR line for every refused reconnect (several a second),
/// and every condition it reports also reaches our event callback, which logs it rate-limited.
const QUIET_DEPENDENCIES: &str = "async_nats=off,hyper=warn,h2=warn,tower=warn,kube=warn,kube_client=warn,mongodb=warn,sqlx=warn,rustls=warn";

/// A `LOG_LEVEL` that is neither a level nor a valid filter directive.
#[derive(Debug, thiserror::Error)]
#[error("LOG_LEVEL: `{value}` is not a log level or filter directive: {source}")]
pub struct BadLogLevel {
    value: String,
    #[source]
    source: tracing_subscriber::filter::ParseError,
}

/// The filter for a `LOG_LEVEL` value.
///
/// # Errors
/// When the value does not parse.
pub fn filter(level: &str) -> Result<EnvFilter, BadLogLevel> {
    let trimmed = level.trim();
    let bare = ["error", "warn", "warning", "info", "debug", "trace", "off"]
        .iter()
        .any(|l| l.eq_ignore_ascii_case(trimmed));
    let user = if bare {
        trimmed.to_ascii_lowercase().replace("warning", "warn")
    } else {
        trimmed.to_owned()
    };
    let directives = with_quiet_dependencies(&user);
    EnvFilter::try_new(&directives).map_err(|source| BadLogLevel {
        value: level.to_owned(),
        source,
    })
}

/// `directives` followed by the quieting of every dependency it does not name itself, so
/// `info,consumer=debug` keeps `async_nats` at WARN while `async_nats=debug` is honoured.
fn with_quiet_dependencies(directives: &str) -> String {
    let named: Vec<&str> = directives
        .split(',')
        .filter_map(|d| d.split_once('=').map(|(target, _)| target.trim()))
        .collect();
    let mut out = directives.to_owned();
    for quiet in QUIET_DEPENDENCIES.split(',') {
        let target = quiet.split_once('=').map_or(quiet, |(t, _)| t);
        if !named
            .iter()
            .any(|n| *n == target || n.starts_with(&format!("{target}::")))
        {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(quiet);
        }
    }
    out
}

/// Installs the global subscriber.
///
/// # Errors
/// When `LOG_LEVEL` does not parse.
pub fn init(args: &LogArgs) -> Result<(), BadLogLevel> {
    let filter = filter(&args.log_level)?;
    // Logs go to stderr: stdout belongs to commands that print a result (replay, compute).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr);
    // A subscriber may already be installed (tests); keep the first one.
    let _ = match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_levels_in_any_case_parse() {
        for l in ["INFO", "debug", "Warning", "ERROR"] {
            assert!(filter(l).is_ok(), "{l}");
        }
    }

    #[test]
    fn dependencies_stay_quiet_under_any_directive() {
        let f = filter("info,consumer=debug").expect("valid").to_string();
        assert!(f.contains("async_nats=off"), "{f}");
        assert!(f.contains("consumer=debug"), "{f}");
        let f = filter("INFO").expect("valid").to_string();
        assert!(
            f.contains("async_nats=off") && f.contains("mongodb=warn"),
            "{f}"
        );
        // Naming a dependency is a deliberate choice and wins.
        let f = filter("info,async_nats=debug").expect("valid").to_string();
        assert!(
            f.contains("async_nats=debug") && !f.contains("async_nats=off"),
            "{f}"
        );
    }

    #[test]
    fn directives_parse_and_garbage_is_named() {
        assert!(filter("info,consumer=debug").is_ok());
        let err = filter("info,=[").expect_err("bad directive");
        assert!(err.to_string().starts_with("LOG_LEVEL: `info,=[`"), "{err}");
    }
}
