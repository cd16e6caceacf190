//! Readiness and liveness state behind the health routes.
//!
//! Readiness is the conjunction of named components (NATS, MySQL, Mongo, …), each set by the
//! code that owns the connection, and it fails the moment shutdown begins. Liveness fails when
//! the main loop stops beating for longer than its stall limit, or when a component reports
//! that the process can no longer make progress at all.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::redact::redact_text;

/// Shared health state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: &'static str,
    started: Instant,
    stall_after: Option<Duration>,
    /// Milliseconds after `started` of the last beat.
    last_beat_ms: AtomicU64,
    shutting_down: AtomicBool,
    /// The std mutex is fine: it is held only to copy or replace a few small values, never
    /// across an `.await`.
    components: Mutex<BTreeMap<&'static str, Component>>,
    fatal: Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
struct Component {
    ready: bool,
    detail: String,
}

/// A health verdict: the HTTP status follows `ok` (200 or 503), the body is JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Healthy or not.
    pub ok: bool,
    /// The response body.
    pub body: Value,
}

impl Health {
    /// Health for `service`. With `stall_after`, liveness fails when [`Health::beat`] has not
    /// been called for that long (the first period counts from now).
    pub fn new(service: &'static str, stall_after: Option<Duration>) -> Health {
        Health {
            inner: Arc::new(Inner {
                service,
                started: Instant::now(),
                stall_after,
                last_beat_ms: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
                components: Mutex::new(BTreeMap::new()),
                fatal: Mutex::new(None),
            }),
        }
    }

    /// Sets a readiness component. The detail is redacted (it may quote a connection URL).
    pub fn set(&self, component: &'static str, ready: bool, detail: impl AsRef<str>) {
        let detail = redact_text(detail.as_ref());
        if let Ok(mut map) = self.inner.components.lock() {
            map.insert(component, Component { ready, detail });
        }
    }

    /// Whether a component is currently ready (`false` when unknown).
    pub fn is_ready(&self, component: &str) -> bool {
        self.inner
            .components
            .lock()
            .map(|m| m.get(component).is_some_and(|c| c.ready))
            .unwrap_or(false)
    }

    /// Records progress of the main loop.
    pub fn beat(&self) {
        let ms = self.inner.started.elapsed().as_millis();
        self.inner
            .last_beat_ms
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Marks the process as unable to make progress for good; liveness fails from now on.
    pub fn fail_liveness(&self, reason: impl AsRef<str>) {
        if let Ok(mut fatal) = self.inner.fatal.lock() {
            *fatal = Some(redact_text(reason.as_ref()));
        }
    }

    /// Shutdown has begun: readiness fails from now on, so traffic and probes move away.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Relaxed);
    }

    /// True once [`Health::begin_shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Relaxed)
    }

    /// The readiness verdict: every component ready, and not shutting down.
    pub fn readiness(&self) -> Report {
        let shutting_down = self.is_shutting_down();
        let components: BTreeMap<&str, Component> = self
            .inner
            .components
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        let ok = !shutting_down && !components.is_empty() && components.values().all(|c| c.ready);
        let body = json!({
            "service": self.inner.service,
            "ready": ok,
            "shutting_down": shutting_down,
            "components": components
                .iter()
                .map(|(name, c)| (name.to_string(), json!({"ready": c.ready, "detail": c.detail})))
                .collect::<serde_json::Map<_, _>>(),
        });
        Report { ok, body }
    }

    /// The liveness verdict at `now`.
    pub fn liveness(&self, now: Instant) -> Report {
        let fatal = self.inner.fatal.lock().map(|f| f.clone()).unwrap_or(None);
        let since_start = now.saturating_duration_since(self.inner.started);
        let last_beat = Duration::from_millis(self.inner.last_beat_ms.load(Ordering::Relaxed));
        let idle = since_start.saturating_sub(last_beat);
        let stalled = self.inner.stall_after.is_some_and(|limit| idle > limit);
        let ok = fatal.is_none() && !stalled;
        let status = match (&fatal, stalled) {
            (Some(_), _) => "failed",
            (None, true) => "stalled",
            (None, false) => "ok",
        };
        let body = json!({
            "service": self.inner.service,
            "status": status,
            "seconds_since_progress": idle.as_secs_f64(),
            "reason": fatal,
        });
        Report { ok, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_every_component_is_ready() {
        let h = Health::new("t", None);
        assert!(!h.readiness().ok, "no components yet");
        h.set("nats", false, "connecting");
        h.set("mongo", true, "ok");
        assert!(!h.readiness().ok);
        h.set("nats", true, "connected");
        assert!(h.readiness().ok);
        assert_eq!(
            h.readiness().body["components"]["nats"]["detail"],
            "connected"
        );
    }

    #[test]
    fn shutdown_makes_readiness_fail() {
        let h = Health::new("t", None);
        h.set("nats", true, "connected");
        h.begin_shutdown();
        let r = h.readiness();
        assert!(!r.ok);
        assert_eq!(r.body["shutting_down"], true);
    }

    #[test]
    fn component_detail_is_redacted() {
        let h = Health::new("t", None);
        h.set(
            "mysql",
            false,
            "cannot reach mysql://root:topsecret@db:3306/x",
        );
        let body = h.readiness().body.to_string();
        assert!(!body.contains("topsecret"), "{body}");
        assert!(body.contains("root:***@db"));
    }

    #[test]
    fn liveness_fails_after_stall_and_recovers_on_beat() {
        let h = Health::new("t", Some(Duration::from_secs(30)));
        let start = Instant::now();
        h.beat();
        assert!(h.liveness(start + Duration::from_secs(10)).ok);
        let late = h.liveness(start + Duration::from_secs(45));
        assert!(!late.ok);
        assert_eq!(late.body["status"], "stalled");
    }

    #[test]
    fn fatal_failure_is_permanent() {
        let h = Health::new("t", None);
        h.fail_liveness("client closed");
        h.beat();
        assert!(!h.liveness(Instant::now()).ok);
    }
}
