//! The NATS side: connect and reconnect forever with backoff, queue-subscribe, feed every
//! message to the [`Processor`], publish counts once a second, log one stats line per
//! interval, and drain on shutdown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::{Client, ConnectOptions, Event};
use futures::{FutureExt, StreamExt};
use metrics::{counter, gauge};
use runtime::health::Health;
use runtime::redact::{Credentials, redact_text};
use runtime::throttle::Throttle;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::Config;
use crate::metrics::{self as names, Exporter};
use crate::process::{Processor, receive_time_ms, reject_summary};
use crate::stats::{ConnectionCounts, stats_line};
use crate::tally::Counts;

/// Fixed name the current consumer uses, so server-side monitoring keeps recognising us.
pub const CLIENT_NAME: &str = "petrosa-data-manager-consumer";

/// Messages handled per wake-up before going back to the `select!` (timers, shutdown). Bounds
/// how long a burst can delay a flush or a drain.
const BATCH: usize = 512;

/// At most one connection log line per this interval (the rest are counted in the next line).
const CONNECTION_LOG_EVERY: Duration = Duration::from_secs(10);

/// Health component names.
const NATS: &str = "nats";
const SUBSCRIPTION: &str = "subscription";

/// Reconnect delay before attempt `attempts` (1-based): 0 for the first retry, then doubling
/// from 100 ms up to `cap`, scaled by `jitter` in `[0.8, 1.2)` so replicas do not reconnect in
/// lock-step after a server restart.
pub fn reconnect_delay(attempts: usize, cap: Duration, jitter: f64) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(16);
    let base = Duration::from_millis(100).saturating_mul(1 << exp).min(cap);
    base.mul_f64(jitter.clamp(0.8, 1.2))
}

/// What the event callback needs between events.
#[derive(Debug)]
struct ConnState {
    connects: AtomicU64,
    /// Rate-limits connection log lines: a flapping link logs one line per interval with a
    /// count, not one per event. Held only inside the callback, never across an `.await`.
    log_gate: Mutex<Throttle>,
}

/// Connects (in the background: the process starts and reports unready until NATS is there).
async fn connect(cfg: &Config, health: &Health, state: Arc<ConnState>) -> Result<Client, Error> {
    let nats = &cfg.nats;
    let servers = nats
        .servers()
        .map_err(|e| Error::Nats(redact_text(&e.to_string())))?;
    let cap = nats.reconnect_max_wait.0;
    let callback_health = health.clone();
    let url = nats.url.redacted();
    let mut options = ConnectOptions::new()
        .name(CLIENT_NAME)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(nats.connect_timeout.0)
        .subscription_capacity(nats.subscription_capacity)
        .reconnect_delay_callback(move |attempts| {
            reconnect_delay(attempts, cap, 0.8 + rand_unit() * 0.4)
        })
        .event_callback(move |event| {
            let state = Arc::clone(&state);
            let health = callback_health.clone();
            let url = url.clone();
            async move { on_event(&event, &state, &health, &url) }
        });
    // The client is handed credential-free addresses, so nothing it logs or returns can quote
    // a secret; the credentials travel only in the CONNECT.
    options = match servers.credentials {
        Some(Credentials::UserPassword { user, password }) => {
            options.user_and_password(user, password)
        }
        Some(Credentials::Token(token)) => options.token(token),
        None => options,
    };
    options
        .connect(servers.addrs)
        .await
        .map_err(|e| Error::Nats(redact_text(&e.to_string())))
}

/// A cheap uniform value in `[0, 1)` for jitter, from the clock's sub-second noise.
fn rand_unit() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

/// Logs connection events (rate-limited) and counts errors. The client feeds events through a
/// small channel with `try_send`, so in a storm some are lost: readiness, the connected gauge,
/// reconnects and drops are therefore polled from the client on every flush instead
/// ([`Loop::poll_client`]); events only make the log and readiness react sooner.
fn on_event(event: &Event, state: &ConnState, health: &Health, url: &str) {
    let log_now = || {
        state
            .log_gate
            .lock()
            .ok()
            .and_then(|mut g| g.allow(Instant::now()))
    };
    match event {
        Event::Connected => {
            health.set(NATS, true, format!("connected to {url}"));
            if state.connects.fetch_add(1, Ordering::Relaxed) > 0 {
                if let Some(held) = log_now() {
                    tracing::info!(url, held_back = held, "reconnected to NATS");
                }
            } else {
                tracing::info!(url, "connected to NATS");
            }
        }
        Event::Disconnected => {
            health.set(
                NATS,
                false,
                format!("disconnected from {url}, reconnecting"),
            );
            counter!(names::NATS_ERRORS, "type" => "connection").increment(1);
            if let Some(held) = log_now() {
                tracing::warn!(
                    url,
                    held_back = held,
                    "disconnected from NATS, reconnecting with backoff"
                );
            }
        }
        Event::SlowConsumer(_) => {
            counter!(names::NATS_SLOW_CONSUMER).increment(1);
            if let Some(held) = log_now() {
                tracing::warn!(
                    held_back = held,
                    "slow consumer: the NATS client is dropping messages"
                );
            }
        }
        Event::ServerError(e) => {
            counter!(names::NATS_ERRORS, "type" => "server").increment(1);
            if let Some(held) = log_now() {
                tracing::warn!(held_back = held, error = %redact_text(&e.to_string()), "NATS server error");
            }
        }
        Event::ClientError(e) => {
            counter!(names::NATS_ERRORS, "type" => "client").increment(1);
            if let Some(held) = log_now() {
                tracing::warn!(held_back = held, error = %redact_text(&e.to_string()), "NATS client error");
            }
        }
        Event::LameDuckMode => tracing::info!(url, "NATS server entered lame duck mode"),
        Event::Draining => {}
        Event::Closed => {
            if !health.is_shutting_down() {
                health.fail_liveness("NATS client closed");
            }
        }
    }
}

/// The interval bookkeeping of the main loop: what to publish each flush, what to log each
/// stats interval, and the connection facts polled from the client.
struct Loop {
    processor: Processor,
    exporter: Exporter,
    /// Counts only: the per-symbol state lives once, in the processor's labels and the
    /// exporter's series.
    interval: Counts,
    interval_started: Instant,
    /// Messages moved from the processor into the exporter so far.
    taken_total: u64,
    /// Reconnects and dropped messages published so far (the counters' values).
    reconnects: u64,
    dropped: u64,
    /// The same at the start of the stats interval.
    conn_at_interval_start: (u64, u64),
    connected: Option<bool>,
    /// Messages the client read for the drain's fence inbox (not ours to count or drop).
    fence_messages: u64,
    health: Health,
    url: String,
    client: Client,
}

impl Loop {
    fn flush(&mut self) {
        let delta = self.processor.take();
        self.taken_total += delta.counts.received;
        self.exporter.publish(&delta, self.processor.labels());
        self.interval.merge(&delta.counts);
    }

    /// Messages taken from the subscription so far, flushed or not.
    fn handled(&self) -> u64 {
        self.taken_total + self.processor.tally.counts.received
    }

    /// Messages the client has read for our subscription (its `in_messages` counts every
    /// message on the connection; ours is the only subscription besides the drain's fence).
    fn delivered(&self) -> u64 {
        self.client
            .statistics()
            .in_messages
            .load(Ordering::Relaxed)
            .saturating_sub(self.fence_messages)
    }

    /// Reads the connection state and the client's counters: readiness and the gauges follow
    /// the real state even when events were dropped.
    fn poll_client(&mut self) {
        let connected = self.client.connection_state() == async_nats::connection::State::Connected;
        if self.connected != Some(connected) {
            self.connected = Some(connected);
            gauge!(names::NATS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
            let detail = if connected {
                format!("connected to {}", self.url)
            } else {
                format!("not connected to {}, reconnecting", self.url)
            };
            self.health.set(NATS, connected, detail);
        }
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        let reconnects = connects.saturating_sub(1);
        if reconnects > self.reconnects {
            counter!(names::NATS_RECONNECTS).increment(reconnects - self.reconnects);
            self.reconnects = reconnects;
        }
    }

    /// Accounts for messages the client dropped. The client counts every message it reads
    /// (`in_messages`, one subscription here) but not the ones it drops when our buffer is
    /// full; with the buffer empty, delivered minus handled is exactly the drops. The count is
    /// taken only when the buffer is empty both before and after reading the client's counter.
    /// Returns `false` when the subscription has ended.
    fn reconcile_drops(&mut self, sub: &mut async_nats::Subscriber) -> bool {
        match take_one(sub, &mut self.processor) {
            Buffer::Empty => {}
            Buffer::Took => return true,
            Buffer::Ended => return false,
        }
        let delivered = self.delivered();
        match take_one(sub, &mut self.processor) {
            Buffer::Empty => {}
            Buffer::Took => return true,
            Buffer::Ended => return false,
        }
        let dropped = delivered.saturating_sub(self.handled());
        if dropped > self.dropped {
            counter!(names::NATS_DROPPED).increment(dropped - self.dropped);
            self.dropped = dropped;
        }
        true
    }

    fn log_stats(&mut self, label: &str) {
        self.flush();
        let delivered = self.delivered();
        let conn = ConnectionCounts {
            reconnects: self.reconnects - self.conn_at_interval_start.0,
            slow_consumer: self.dropped - self.conn_at_interval_start.1,
            queue_size: delivered
                .saturating_sub(self.taken_total)
                .saturating_sub(self.dropped),
        };
        let elapsed = self.interval_started.elapsed();
        let line = stats_line(&self.interval, elapsed, conn);
        tracing::info!(kind = label, "{line}");
        // The counts by reason are on the stats line; the samples are for whoever turns on
        // DEBUG, so a storm of bad input never adds lines at INFO.
        let samples = self.processor.take_samples();
        if tracing::enabled!(tracing::Level::DEBUG)
            && let Some(summary) = reject_summary(&self.interval, &samples, elapsed.as_secs_f64())
        {
            tracing::debug!("{summary}");
        }
        self.interval = Counts::default();
        self.interval_started = Instant::now();
        self.conn_at_interval_start = (self.reconnects, self.dropped);
    }
}

impl Loop {
    /// Handles every message the server routed to us before this call, and returns whether it
    /// got them all before `deadline`.
    ///
    /// async-nats' `Subscriber::drain` forgets the subscription as soon as its UNSUB is written,
    /// so whatever is still on the wire from the server is discarded. A message to a private
    /// inbox on the same connection arrives after everything routed to us before it (the server
    /// writes one connection in order), so once it is here the backlog is in our buffer and a
    /// drain can lose at most what is routed during one round trip.
    async fn catch_up(
        &mut self,
        sub: &mut async_nats::Subscriber,
        deadline: tokio::time::Instant,
    ) -> bool {
        let inbox = self.client.new_inbox();
        let Ok(Ok(mut fence)) =
            tokio::time::timeout_at(deadline, self.client.subscribe(inbox.clone())).await
        else {
            return false;
        };
        if self.client.publish(inbox, "".into()).await.is_err() {
            return false;
        }
        loop {
            tokio::select! {
                biased;
                msg = sub.next() => match msg {
                    Some(msg) => self.processor.handle(&msg.payload, receive_time_ms()),
                    None => return false,
                },
                fenced = fence.next() => {
                    if fenced.is_some() {
                        self.fence_messages += 1;
                    }
                    break;
                }
                () = tokio::time::sleep_until(deadline) => return false,
            }
        }
        // Everything ahead of the fence was put into our buffer before the fence arrived.
        take_buffered(sub, &mut self.processor);
        true
    }
}

/// What a look into the subscription's buffer found.
enum Buffer {
    Empty,
    Took,
    Ended,
}

/// Takes one buffered message, if there is one, without waiting.
fn take_one(sub: &mut async_nats::Subscriber, processor: &mut Processor) -> Buffer {
    match sub.next().now_or_never() {
        Some(Some(msg)) => {
            processor.handle(&msg.payload, receive_time_ms());
            Buffer::Took
        }
        Some(None) => Buffer::Ended,
        None => Buffer::Empty,
    }
}

/// Takes every message already buffered, without waiting.
fn take_buffered(sub: &mut async_nats::Subscriber, processor: &mut Processor) {
    while let Buffer::Took = take_one(sub, processor) {}
}

/// Runs the subscriber until `shutdown`, then drains: no new messages are taken, those already
/// buffered are counted, the final counts are published and logged.
///
/// # Errors
/// When the client cannot be created (a malformed URL) or the subscription cannot be made.
pub async fn run(
    cfg: &Config,
    health: Health,
    exporter: Exporter,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (client, mut sub, processor) = subscribe(cfg, &health).await?;
    let mut lp = Loop::new(processor, exporter, &health, cfg, client);
    lp.poll_client();
    let closed = lp.serve(&mut sub, cfg, &shutdown).await;

    health.begin_shutdown();
    let deadline = tokio::time::Instant::now() + cfg.shutdown_grace.0;
    lp.finish(&mut sub, closed, deadline).await;
    if closed {
        tracing::error!("the NATS subscription ended unexpectedly; exiting");
        return Err(Error::SubscriptionEnded);
    }
    Ok(())
}

/// Reports unready, connects and queue-subscribes, then reports the subscription ready.
async fn subscribe(
    cfg: &Config,
    health: &Health,
) -> Result<(Client, async_nats::Subscriber, Processor), Error> {
    if cfg.nats.max_reconnect_attempts.is_some() {
        tracing::warn!("NATS_MAX_RECONNECT_ATTEMPTS is ignored: dm-consumer reconnects forever");
    }
    health.set(NATS, false, format!("connecting to {}", cfg.nats.url));
    health.set(SUBSCRIPTION, false, "not subscribed yet");
    gauge!(names::NATS_CONNECTED).set(0.0);
    gauge!(names::NATS_SUBSCRIBED).set(0.0);

    let state = Arc::new(ConnState {
        connects: AtomicU64::new(0),
        log_gate: Mutex::new(Throttle::new(CONNECTION_LOG_EVERY)),
    });
    let processor = cfg.processor().map_err(|e| Error::Nats(e.to_string()))?;
    let client = connect(cfg, health, Arc::clone(&state)).await?;
    let sub = client
        .queue_subscribe(cfg.nats.subject.clone(), cfg.nats.queue_group.clone())
        .await
        .map_err(|e| Error::Nats(redact_text(&e.to_string())))?;
    health.set(
        SUBSCRIPTION,
        true,
        format!(
            "{} (queue group {})",
            cfg.nats.subject, cfg.nats.queue_group
        ),
    );
    gauge!(names::NATS_SUBSCRIBED).set(1.0);
    health.beat();
    Ok((client, sub, processor))
}

/// A ticker for `period` that delays rather than bursts after a stall.
fn ticker(start: tokio::time::Instant, period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(start, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

impl Loop {
    fn new(
        processor: Processor,
        exporter: Exporter,
        health: &Health,
        cfg: &Config,
        client: Client,
    ) -> Self {
        Loop {
            processor,
            exporter,
            interval: Counts::default(),
            interval_started: Instant::now(),
            taken_total: 0,
            reconnects: 0,
            dropped: 0,
            conn_at_interval_start: (0, 0),
            connected: None,
            fence_messages: 0,
            health: health.clone(),
            url: cfg.nats.url.redacted(),
            client,
        }
    }

    /// Takes messages, flushes counts and logs stats until `shutdown` (returns `false`) or
    /// until the subscription ends (returns `true`).
    async fn serve(
        &mut self,
        sub: &mut async_nats::Subscriber,
        cfg: &Config,
        shutdown: &CancellationToken,
    ) -> bool {
        let now = tokio::time::Instant::now();
        let mut flush_tick = ticker(now, cfg.flush_interval.0);
        let period = cfg.stats_interval.0;
        let mut stats_tick = ticker(now + period, period);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return false,
                _ = flush_tick.tick() => {
                    self.poll_client();
                    let open = self.reconcile_drops(sub);
                    self.flush();
                    self.health.beat();
                    if !open {
                        return true;
                    }
                }
                _ = stats_tick.tick() => self.log_stats("interval"),
                msg = sub.next() => {
                    let Some(msg) = msg else {
                        return true;
                    };
                    let now = receive_time_ms();
                    self.processor.handle(&msg.payload, now);
                    if self.take_burst(sub, now) {
                        return true;
                    }
                }
            }
        }
    }

    /// Takes up to [`BATCH`] already buffered messages without another trip through
    /// `select!`. Returns whether the subscription ended.
    fn take_burst(&mut self, sub: &mut async_nats::Subscriber, now: i64) -> bool {
        for _ in 0..BATCH {
            match sub.next().now_or_never() {
                Some(Some(msg)) => self.processor.handle(&msg.payload, now),
                Some(None) => return true,
                None => break,
            }
        }
        false
    }

    /// The shutdown: catches up and drains the subscription (when connected and it did not
    /// end), counts what is buffered, publishes and logs the final counts, drains the client.
    /// Every step is bounded by `deadline`.
    async fn finish(
        &mut self,
        sub: &mut async_nats::Subscriber,
        closed: bool,
        deadline: tokio::time::Instant,
    ) {
        self.poll_client();
        if closed {
            self.health.fail_liveness("NATS subscription closed");
        } else if self.connected == Some(true) {
            // Take in everything already routed to us, stop taking new messages, then count what
            // is still in hand. The connection may drop in the middle of a drain.
            if !self.catch_up(sub, deadline).await {
                tracing::warn!("catching up before the drain did not finish; draining anyway");
            }
            self.drain_subscription(sub, deadline).await;
        }
        // Whatever the drain did, count what the client had already buffered.
        take_buffered(sub, &mut self.processor);
        self.reconcile_drops(sub);
        gauge!(names::NATS_SUBSCRIBED).set(0.0);
        self.log_stats("final");
        if self.connected == Some(true) {
            drain_client(&self.client, deadline).await;
        }
    }

    /// Unsubscribes and handles what the server still delivers before the drain completes.
    async fn drain_subscription(
        &mut self,
        sub: &mut async_nats::Subscriber,
        deadline: tokio::time::Instant,
    ) {
        match tokio::time::timeout_at(deadline, sub.drain()).await {
            Ok(Ok(())) => {
                while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
                    self.processor.handle(&msg.payload, receive_time_ms());
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %redact_text(&e.to_string()), "draining the subscription failed; counting what is buffered");
            }
            Err(_) => {
                tracing::warn!("draining the subscription timed out; counting what is buffered")
            }
        }
    }
}

/// Flushes the client's pending writes and closes it, by `deadline`; failures only matter at
/// DEBUG, the counts are already logged.
async fn drain_client(client: &Client, deadline: tokio::time::Instant) {
    match tokio::time::timeout_at(deadline, client.drain()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::debug!(error = %redact_text(&e.to_string()), "NATS client drain failed")
        }
        Err(_) => tracing::debug!("NATS client drain timed out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_doubles_to_the_cap() {
        let cap = Duration::from_secs(2);
        let d = |n| reconnect_delay(n, cap, 1.0);
        assert_eq!(d(1), Duration::ZERO);
        assert_eq!(d(2), Duration::from_millis(100));
        assert_eq!(d(3), Duration::from_millis(200));
        assert_eq!(d(6), Duration::from_millis(1600));
        assert_eq!(d(7), cap);
        assert_eq!(d(10_000), cap);
    }

    #[test]
    fn jitter_is_bounded() {
        let cap = Duration::from_secs(2);
        assert_eq!(reconnect_delay(9, cap, 5.0), Duration::from_millis(2400));
        assert_eq!(reconnect_delay(9, cap, 0.0), Duration::from_millis(1600));
    }
}
