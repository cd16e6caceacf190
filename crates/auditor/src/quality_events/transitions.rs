//! What changed between two audits (pure): findings that opened, findings that resolved and
//! datasets whose status changed, as versioned event documents with stable ids.
//!
//! A finding resolves only where the audit covered it, by the same rule the writer uses to set
//! `resolved_at`: dataset-level kinds whenever the dataset was scored, gaps that end inside the
//! window, row findings inside the window when no row finding was held back by the cap.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::dataset::DatasetReport;
use crate::finding::{Check, Finding, Severity, rfc3339};

/// The version of the event document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// A finding that was open after the last audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFinding {
    /// The check.
    pub check: Check,
    /// Its severity.
    pub severity: Severity,
    /// Gaps: first missing slot; row findings: the row's open time.
    pub start: Option<DateTime<Utc>>,
    /// Gaps: end of the missing range.
    pub end: Option<DateTime<Utc>>,
    /// The sentence.
    pub details: String,
}

impl OpenFinding {
    fn of(f: &Finding) -> OpenFinding {
        OpenFinding {
            check: f.check,
            severity: f.severity,
            start: f.start,
            end: f.end,
            details: f.details.clone(),
        }
    }
}

/// The state events are computed against: each dataset's status and the open findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Status per (symbol, timeframe).
    pub statuses: BTreeMap<(String, String), String>,
    /// Open findings per (symbol, timeframe), by their stable key.
    pub open: BTreeMap<(String, String), BTreeMap<String, OpenFinding>>,
}

/// The finding an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRef {
    /// Its stable key (the `_id` of its `audit_logs` document).
    pub id: String,
    /// The check.
    pub kind: &'static str,
    /// Its severity.
    pub severity: &'static str,
    /// Gaps: first missing slot; row findings: the row's open time.
    pub start: Option<String>,
    /// Gaps: end of the missing range (exclusive).
    pub end: Option<String>,
    /// The sentence.
    pub details: String,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A finding was seen that was not open before.
    FindingOpened,
    /// An open finding was not seen again where the audit covered it.
    FindingResolved,
    /// The dataset's status differs from the previous audit's.
    StatusChanged,
}

impl EventType {
    /// The name (`finding_opened`), also a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::FindingOpened => "finding_opened",
            EventType::FindingResolved => "finding_resolved",
            EventType::StatusChanged => "status_changed",
        }
    }
}

/// One event, as published (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Stable id, also the `Nats-Msg-Id` header: type, subject and audit instant.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The symbol.
    pub symbol: String,
    /// The timeframe.
    pub timeframe: String,
    /// The audit instant that observed it.
    pub observed_at: String,
    /// The leader term of the audit.
    pub term: i64,
    /// The leader.
    pub leader_identity: String,
    /// Status changes: the previous status (null for a dataset's first audit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<Option<String>>,
    /// The dataset's status after this audit.
    pub status: String,
    /// The dataset's quality score after this audit (null when not scored).
    pub quality_score: Option<f64>,
    /// Finding events: the finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingRef>,
}

/// Who audited and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The leader term.
    pub term: i64,
    /// The leader.
    pub identity: String,
}

fn covered(r: &DatasetReport, f: &OpenFinding) -> bool {
    if r.scores.is_none() {
        return false;
    }
    let start = r.params.start();
    match f.check {
        Check::Gap => f.end.is_some_and(|end| end > start),
        c if c.is_row_level() => {
            r.row_findings_suppressed == 0 && f.start.is_some_and(|t| t >= start)
        }
        _ => true,
    }
}

fn finding_ref(id: &str, f: &OpenFinding) -> FindingRef {
    FindingRef {
        id: id.to_owned(),
        kind: f.check.as_str(),
        severity: f.severity.as_str(),
        start: f.start.map(rfc3339),
        end: f.end.map(rfc3339),
        details: f.details.clone(),
    }
}

/// The events of `reports` against `before`, and the snapshot after them.
pub fn transitions(
    before: &Snapshot,
    reports: &[DatasetReport],
    stamp: &Stamp,
) -> (Vec<Event>, Snapshot) {
    let mut after = before.clone();
    let mut events = Vec::new();
    for r in reports {
        let key = (r.symbol.clone(), r.timeframe.label().to_owned());
        let observed_at = rfc3339(r.params.now);
        let status = r.status.as_str().to_owned();
        let quality_score = r.scores.map(|s| s.quality).filter(|q| q.is_finite());
        let event = |kind: EventType, subject: &str| Event {
            schema_version: SCHEMA_VERSION,
            id: format!("{}|{subject}|{observed_at}", kind.as_str()),
            kind,
            symbol: key.0.clone(),
            timeframe: key.1.clone(),
            observed_at: observed_at.clone(),
            term: stamp.term,
            leader_identity: stamp.identity.clone(),
            previous_status: None,
            status: status.clone(),
            quality_score,
            finding: None,
        };
        let was_open = before.open.get(&key).cloned().unwrap_or_default();
        let mut open: BTreeMap<String, OpenFinding> = BTreeMap::new();
        for f in &r.findings {
            let id = f.key(&r.symbol, r.timeframe.label());
            let of = OpenFinding::of(f);
            if !was_open.contains_key(&id) {
                events.push(Event {
                    finding: Some(finding_ref(&id, &of)),
                    ..event(EventType::FindingOpened, &id)
                });
            }
            open.insert(id, of);
        }
        for (id, f) in was_open {
            if open.contains_key(&id) {
                continue;
            }
            if covered(r, &f) {
                events.push(Event {
                    finding: Some(finding_ref(&id, &f)),
                    ..event(EventType::FindingResolved, &id)
                });
            } else {
                open.insert(id, f);
            }
        }
        after.open.insert(key.clone(), open);
        let previous = before.statuses.get(&key).cloned();
        if previous.as_deref() != Some(status.as_str()) {
            events.push(Event {
                previous_status: Some(previous),
                ..event(EventType::StatusChanged, &format!("{}|{}", key.0, key.1))
            });
        }
        after.statuses.insert(key, status);
    }
    (events, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{DatasetAudit, Params};
    use crate::score::Profile;
    use store::testing::{at, candle};

    fn audit(now_h: u32, missing: &[u32]) -> DatasetReport {
        let tf = "1h".parse().expect("tf");
        let p = Params {
            now: at(2025, 10, 21, now_h, 30, 0),
            window: 86_400,
            timeframe: tf,
            tolerance: 60,
            max_lag: 7_200,
            profile: Profile::V3,
            max_row_findings: 100,
        };
        let mut a = DatasetAudit::new("BTCUSDT", p, None);
        for h in 0..now_h {
            if !missing.contains(&h) {
                a.push(candle("BTCUSDT", tf, at(2025, 10, 21, h, 0, 0)));
            }
        }
        a.finish()
    }

    fn stamp() -> Stamp {
        Stamp {
            term: 4,
            identity: "auditor-0".into(),
        }
    }

    fn kinds(events: &[Event]) -> Vec<(&'static str, Option<&str>)> {
        events
            .iter()
            .map(|e| (e.kind.as_str(), e.finding.as_ref().map(|f| f.kind)))
            .collect()
    }

    #[test]
    fn a_gap_appearing_then_repaired_opens_then_resolves_once() {
        let (first, s1) = transitions(&Snapshot::default(), &[audit(12, &[])], &stamp());
        assert_eq!(kinds(&first), [("status_changed", None)]);
        assert_eq!(first[0].previous_status, Some(None));
        assert_eq!(first[0].status, "ok");

        let (broken, s2) = transitions(&s1, &[audit(13, &[5, 6])], &stamp());
        assert_eq!(
            kinds(&broken),
            [("finding_opened", Some("gap")), ("status_changed", None)]
        );
        let opened = &broken[0];
        assert_eq!(
            opened.id,
            "finding_opened|BTCUSDT|1h|gap|2025-10-21T05:00:00Z|2025-10-21T13:30:00Z"
        );
        assert_eq!(broken[1].previous_status, Some(Some("ok".into())));
        assert_eq!(broken[1].status, "critical");

        let (steady, s3) = transitions(&s2, &[audit(14, &[5, 6])], &stamp());
        assert!(steady.is_empty(), "nothing changed: {steady:?}");

        let (repaired, s4) = transitions(&s3, &[audit(15, &[])], &stamp());
        assert_eq!(
            kinds(&repaired),
            [("finding_resolved", Some("gap")), ("status_changed", None)]
        );
        assert_eq!(
            repaired[0].finding.as_ref().map(|f| f.id.as_str()),
            Some("BTCUSDT|1h|gap|2025-10-21T05:00:00Z")
        );
        assert_eq!(repaired[0].term, 4);
        assert!(s4.open.values().all(BTreeMap::is_empty));
    }

    #[test]
    fn findings_outside_the_audit_stay_open_silently() {
        let report = audit(12, &[]);
        let mut before = Snapshot::default();
        let key = ("BTCUSDT".to_owned(), "1h".to_owned());
        before.statuses.insert(key.clone(), "ok".into());
        let old_gap = OpenFinding {
            check: Check::Gap,
            severity: Severity::High,
            start: Some(at(2025, 10, 1, 0, 0, 0)),
            end: Some(at(2025, 10, 1, 5, 0, 0)),
            details: "old".into(),
        };
        before
            .open
            .insert(key.clone(), BTreeMap::from([("old".to_owned(), old_gap)]));
        let (events, after) = transitions(&before, &[report], &stamp());
        assert!(events.is_empty(), "{events:?}");
        assert!(after.open[&key].contains_key("old"));
    }

    #[test]
    fn the_event_document_has_the_documented_fields() {
        let (_, s1) = transitions(&Snapshot::default(), &[audit(12, &[])], &stamp());
        let (events, _) = transitions(&s1, &[audit(13, &[5])], &stamp());
        let v = serde_json::to_value(&events[0]).expect("json");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["type"], "finding_opened");
        assert_eq!(v["finding"]["kind"], "gap");
        assert_eq!(v["finding"]["severity"], "medium");
        assert_eq!(v["observed_at"], "2025-10-21T13:30:00Z");
        assert!(v.get("previous_status").is_none());
        let s = serde_json::to_value(&events[1]).expect("json");
        assert_eq!(s["previous_status"], "ok");
        assert_eq!(s["status"], "warn");
        assert!(s.get("finding").is_none());
    }
}
