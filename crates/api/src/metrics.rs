//! dm-api's metrics (names in one place) and the once-a-minute stats line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

/// Requests by route template and status code.
pub const REQUESTS: &str = "data_manager_api_requests_total";
/// Request durations by route template.
pub const REQUEST_SECONDS: &str = "data_manager_api_request_duration_seconds";
/// Stored documents skipped because their shape was not understood, by collection.
pub const SKIPPED_DOCUMENTS: &str = "data_manager_api_skipped_documents_total";

/// Registers names, help and units.
pub fn describe() {
    describe_counter!(REQUESTS, "HTTP requests by route template and status code");
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP request duration by route template"
    );
    describe_counter!(
        SKIPPED_DOCUMENTS,
        "Stored documents skipped as malformed, by collection"
    );
}

/// Counts documents skipped as malformed.
pub fn skipped(collection: &'static str, n: usize) {
    if n > 0 {
        counter!(SKIPPED_DOCUMENTS, "collection" => collection).increment(n as u64);
    }
}

/// Counts of one stats interval, shared by every request (relaxed atomics: only totals matter).
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
}

/// The process's stats.
pub static STATS: Stats = Stats {
    requests: AtomicU64::new(0),
    client_errors: AtomicU64::new(0),
    server_errors: AtomicU64::new(0),
};

impl Stats {
    /// The stats line for the counts since the last call, which it resets.
    pub fn take_line(&self, interval: Duration) -> String {
        let requests = self.requests.swap(0, Ordering::Relaxed);
        let client = self.client_errors.swap(0, Ordering::Relaxed);
        let server = self.server_errors.swap(0, Ordering::Relaxed);
        let rate = requests as f64 / interval.as_secs_f64().max(1e-3);
        format!(
            "API stats: requests={requests}, rate={rate:.1} req/s, client_errors={client}, server_errors={server}, interval_s={:.1}",
            interval.as_secs_f64()
        )
    }
}

/// Middleware: counts and times every request by its route template (never the raw path, so
/// label values stay bounded), and skips the probes so they do not drown the stats.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    if route.starts_with("/health/") || route == "/metrics" {
        return response;
    }
    let status = response.status();
    STATS.requests.fetch_add(1, Ordering::Relaxed);
    if status.is_client_error() {
        STATS.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if status.is_server_error() {
        STATS.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    counter!(REQUESTS, "route" => route.clone(), "status" => status.as_str().to_owned())
        .increment(1);
    histogram!(REQUEST_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_line_reports_the_interval_and_resets() {
        let s = Stats::default();
        s.requests.fetch_add(120, Ordering::Relaxed);
        s.client_errors.fetch_add(3, Ordering::Relaxed);
        assert_eq!(
            s.take_line(Duration::from_secs(60)),
            "API stats: requests=120, rate=2.0 req/s, client_errors=3, server_errors=0, interval_s=60.0"
        );
        assert!(s.take_line(Duration::from_secs(60)).contains("requests=0,"));
    }
}
