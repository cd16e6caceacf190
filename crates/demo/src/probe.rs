//! Reading the services' admin endpoints: a bare HTTP/1.0 GET, and Prometheus text parsing (pure).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every probe is one local request; a stuck one is abandoned after this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET http://127.0.0.1:<port><path>`: the status code and the body, or `None` when the
/// server does not answer.
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let request = async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, body.to_owned()))
    };
    tokio::time::timeout(HTTP_TIMEOUT, request)
        .await
        .ok()
        .flatten()
}

/// The sum of the samples of `name` whose labels include every `(key, value)` of `labels`;
/// `None` when no sample matches.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once('}') {
                Some((l, v)) => (l, v),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue, // a longer metric name with this prefix
        };
        let all = labels
            .iter()
            .all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        if let (true, Some(Ok(x))) = (all, value.split_whitespace().next().map(str::parse::<f64>)) {
            *total.get_or_insert(0.0) += x;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP data_manager_messages_received_total x\n\
        data_manager_messages_received_total 1200\n\
        data_manager_messages_received_total_extra 5\n\
        data_manager_messages_processed_total{event_type=\"trade\"} 700\n\
        data_manager_messages_processed_total{event_type=\"depth\"} 300\n";

    #[test]
    fn sums_matching_samples_only() {
        assert_eq!(
            sample(TEXT, "data_manager_messages_received_total", &[]),
            Some(1200.0)
        );
        assert_eq!(
            sample(TEXT, "data_manager_messages_processed_total", &[]),
            Some(1000.0)
        );
        assert_eq!(
            sample(
                TEXT,
                "data_manager_messages_processed_total",
                &[("event_type", "depth")]
            ),
            Some(300.0)
        );
        assert_eq!(sample(TEXT, "data_manager_nope", &[]), None);
    }
}
