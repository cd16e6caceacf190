//! Reading the services' admin endpoints: the test kit's HTTP/1.0 GET, and Prometheus text
//! parsing (pure).

/// `GET http://127.0.0.1:<port><path>`: the status code and the body, or `None` when the
/// server does not answer. The test kit's blocking [`testkit::http_get`] runs on the blocking
/// pool, so a slow answer never holds up the demo's other tasks (signals, event counting).
pub async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || testkit::http_get(port, &path))
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
