//! Counts the data-quality events dm-auditor publishes, through a subscription of their subject.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;

/// Events received so far.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Subscribes to `subject` and counts what arrives, until the process ends. If NATS cannot be
/// reached the count stays 0 (the summary then shows 0 events).
pub async fn count(nats_url: &str, subject: &str) -> Counter {
    let counter = Counter::default();
    let Ok(client) = async_nats::connect(nats_url).await else {
        return counter;
    };
    let Ok(mut sub) = client.subscribe(subject.to_owned()).await else {
        return counter;
    };
    let _ = client.flush().await;
    let n = counter.0.clone();
    tokio::spawn(async move {
        // The client lives as long as the subscription.
        let _client = client;
        while sub.next().await.is_some() {
            n.fetch_add(1, Ordering::Relaxed);
        }
    });
    counter
}
