//! Helpers every integration test uses: [`eventually`] (polling with a deadline),
//! [`free_port`], a raw-socket [`http_get`] for admin ports, and Prometheus text parsing
//! ([`parse_metrics`], [`metric`]), a TCP proxy adding network delay ([`latency`]), and the
//! secrets check both schedulers share ([`scheduler_secrets`]).
//!
//! For tests and developer tools: test code and the `dm-demo` harness depend on this crate, the
//! service binaries never do. Panics here are test failures.

pub mod latency;
pub mod scheduler_secrets;

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use tokio::time::Instant;

/// Polls `probe` every 25 ms until it yields `Some`, or fails the test after `within`.
///
/// The deadline is on Tokio's clock, so it also holds under paused time.
///
/// # Panics
/// When `within` passes without `probe` yielding `Some` (that is the test failing).
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    within: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A local port that was free a moment ago.
///
/// # Panics
/// When the OS has no ephemeral port to give.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// A minimal HTTP/1.0 `GET path` on `127.0.0.1:port` over a real socket: (status, body), or
/// `None` if nothing answers within 5 s.
#[must_use]
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Prometheus text into `series -> value`, where a series is `name{labels}` as rendered.
#[must_use]
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `series` (name plus labels, as exposed) in `/metrics` on the admin port, or
/// `None` if nothing answers or the series is absent.
#[must_use]
pub fn metric(port: u16, series: &str) -> Option<f64> {
    let (_, body) = http_get(port, "/metrics")?;
    parse_metrics(&body).get(series).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_series_with_and_without_labels() {
        let text = "# HELP x_total x\n# TYPE x_total counter\nx_total 3\n\
                    y{lease=\"a b\"} 1.5\n\ny_extra 7\n";
        let m = parse_metrics(text);
        assert_eq!(m.get("x_total"), Some(&3.0));
        assert_eq!(m.get("y{lease=\"a b\"}"), Some(&1.5));
        assert_eq!(m.get("y"), None);
        assert_eq!(m.len(), 3);
    }
}
