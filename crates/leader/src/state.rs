//! The election's decision logic: an observed Lease plus `now` in, the next write or verdict out.
//!
//! Pure: no I/O, no clock, no handles. The caller passes the monotonic `now` (the only clock
//! expiry is judged by, so clock offsets between nodes do not matter) and the wall-clock `wall`
//! (only written into `acquireTime`/`renewTime` for humans; never read back for decisions).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// The fields of a Lease's `spec` the election reads and writes; `leaseTransitions` is the term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LeaseRecord {
    /// `holderIdentity`; `None` and `Some("")` both mean "nobody holds it".
    pub holder: Option<String>,
    /// `leaseDurationSeconds`.
    pub lease_duration_seconds: Option<i32>,
    /// `acquireTime`.
    pub acquire_time: Option<Timestamp>,
    /// `renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `leaseTransitions`: the term.
    pub lease_transitions: Option<i32>,
}

impl LeaseRecord {
    /// The holder, if there is a non-empty one.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }

    /// The term this record carries (`leaseTransitions`, absent = 0 as in client-go).
    pub fn term(&self) -> i64 {
        i64::from(self.lease_transitions.unwrap_or(0))
    }
}

/// The last Lease we read or wrote, and when we first saw that exact content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observed {
    pub record: LeaseRecord,
    /// Opaque; only ever sent back as the write precondition.
    pub resource_version: String,
    /// Monotonic time at which this content was first observed (or our write of it was sent).
    pub at: Instant,
}

/// What the acquire step wants the I/O layer to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AcquirePlan {
    /// The Lease does not exist: POST this record.
    Create(LeaseRecord),
    /// PUT this record with this `resourceVersion` precondition.
    Update {
        record: LeaseRecord,
        resource_version: String,
    },
    /// Someone else holds a Lease that has not expired by our observation.
    Follow { holder: String },
}

/// The verdict on a re-read after an ambiguous or refused renew: did our write commit?
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reconciled {
    /// Our PUT committed after all: counted as a renew as of the time it was sent.
    Committed,
    /// Our PUT did not commit but the Lease is still ours; the fresh `resourceVersion` was adopted.
    StillOurs,
    /// Someone else holds it, nobody does, the term moved, or it is gone: leadership is over.
    Lost { holder: Option<String> },
}

/// Our own leadership, while we have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Term {
    term: i64,
    /// When the last successful acquire/renew was *sent*: the renew deadline counts from here,
    /// which is before any other candidate can have observed it.
    last_renew: Instant,
}

/// The election state machine for one identity and one Lease.
#[derive(Clone, Debug)]
pub(crate) struct Election {
    identity: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    observed: Option<Observed>,
    leading: Option<Term>,
}

impl Election {
    /// A fresh candidate that has observed nothing yet.
    pub fn new(identity: String, lease_duration: Duration, renew_deadline: Duration) -> Self {
        Self {
            identity,
            lease_duration,
            renew_deadline,
            observed: None,
            leading: None,
        }
    }

    /// The term we lead under, if we lead.
    pub fn term(&self) -> Option<i64> {
        self.leading.map(|t| t.term)
    }

    /// When our last successful acquire/renew was sent, if we lead.
    pub fn last_renew(&self) -> Option<Instant> {
        self.leading.map(|t| t.last_renew)
    }

    /// The instant by which a renew must succeed, if we lead.
    pub fn deadline(&self) -> Option<Instant> {
        self.leading.map(|t| t.last_renew + self.renew_deadline)
    }

    /// The last observed record, if any.
    #[cfg(test)]
    pub fn observed(&self) -> Option<&Observed> {
        self.observed.as_ref()
    }

    /// Records the result of a read: `None` means the Lease does not exist.
    ///
    /// The observation time only moves when the content changes: an unchanged
    /// record keeps the instant we first saw it, so a dead holder's Lease expires LD after that.
    pub fn observe(&mut self, read: Option<(LeaseRecord, String)>, now: Instant) {
        self.observed = match read {
            None => None,
            Some((record, resource_version)) => {
                let at = match &self.observed {
                    Some(old) if old.record == record => old.at,
                    _ => now,
                };
                Some(Observed {
                    record,
                    resource_version,
                    at,
                })
            }
        };
    }

    /// Decides the acquire step from the last observation: create a missing Lease, take over a
    /// released or expired one, otherwise follow.
    pub fn plan_acquire(&self, now: Instant, wall: Timestamp) -> AcquirePlan {
        let wall = truncate_to_micros(wall);
        let Some(observed) = &self.observed else {
            return AcquirePlan::Create(self.acquire_record(None, wall));
        };
        if let Some(holder) = observed.record.holder()
            && holder != self.identity
            && now < observed.at + self.record_duration(&observed.record)
        {
            return AcquirePlan::Follow {
                holder: holder.to_owned(),
            };
        }
        AcquirePlan::Update {
            record: self.acquire_record(Some(&observed.record), wall),
            resource_version: observed.resource_version.clone(),
        }
    }

    /// The record and precondition for a renew, if we lead.
    pub fn plan_renew(&self, wall: Timestamp) -> Option<(LeaseRecord, String)> {
        self.leading?;
        let observed = self.observed.as_ref()?;
        let record = LeaseRecord {
            holder: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds()),
            acquire_time: observed.record.acquire_time,
            renew_time: Some(truncate_to_micros(wall)),
            lease_transitions: observed.record.lease_transitions,
        };
        Some((record, observed.resource_version.clone()))
    }

    /// The record and precondition for a release, if our latest observation says we hold the
    /// Lease. `None` means: send nothing.
    pub fn plan_release(&self, wall: Timestamp) -> Option<(LeaseRecord, String)> {
        let observed = self.observed.as_ref()?;
        if observed.record.holder() != Some(self.identity.as_str()) {
            return None;
        }
        let wall = truncate_to_micros(wall);
        let record = LeaseRecord {
            holder: Some(String::new()),
            lease_duration_seconds: Some(1),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            lease_transitions: observed.record.lease_transitions,
        };
        Some((record, observed.resource_version.clone()))
    }

    /// Our write (create, acquire or renew) succeeded; `written` is what the server returned and
    /// `sent` is when the request went out. Returns the term we now lead under.
    ///
    /// Leadership starts only here, on a 2xx, never on intent.
    pub fn wrote(&mut self, written: LeaseRecord, resource_version: String, sent: Instant) -> i64 {
        let term = written.term();
        self.observed = Some(Observed {
            record: written,
            resource_version,
            at: sent,
        });
        self.leading = Some(Term {
            term,
            last_renew: sent,
        });
        term
    }

    /// Judges a re-read made after a renew PUT of `attempted` (sent at `sent`) failed or was
    /// refused. Only meaningful while leading.
    pub fn reconcile(
        &mut self,
        read: Option<(LeaseRecord, String)>,
        attempted: &LeaseRecord,
        sent: Instant,
        now: Instant,
    ) -> Reconciled {
        let Some(term) = self.leading else {
            self.observe(read, now);
            return Reconciled::Lost {
                holder: self.observed_holder(),
            };
        };
        let ours = matches!(&read, Some((record, _))
            if record.holder() == Some(self.identity.as_str()) && record.term() == term.term);
        if !ours {
            self.observe(read, now);
            return Reconciled::Lost {
                holder: self.observed_holder(),
            };
        }
        let committed =
            matches!(&read, Some((record, _)) if record.renew_time == attempted.renew_time);
        if committed {
            if let Some((record, resource_version)) = read {
                self.wrote(record, resource_version, sent);
            }
            Reconciled::Committed
        } else {
            self.observe(read, now);
            Reconciled::StillOurs
        }
    }

    /// Ends our leadership (deadline missed, loss detected, or shutdown). Returns the term that
    /// ended, if we were leading.
    pub fn step_down(&mut self) -> Option<i64> {
        self.leading.take().map(|t| t.term)
    }

    /// The holder of the last observation, unless it is empty.
    pub fn observed_holder(&self) -> Option<String> {
        self.observed
            .as_ref()
            .and_then(|o| o.record.holder())
            .map(str::to_owned)
    }

    /// Builds the record for taking the Lease over from `previous` (`None`: creating it).
    ///
    /// Every new leadership bumps `leaseTransitions`, even when the record already names us
    /// (a restarted term after a step-down, or an acquire whose response we never saw), so every
    /// `Leading` interval has its own term. client-go would keep the term in that case; it can,
    /// because its elector exits after losing the lease, and ours keeps running.
    fn acquire_record(&self, previous: Option<&LeaseRecord>, wall: Timestamp) -> LeaseRecord {
        let lease_transitions = match previous {
            None => 0,
            Some(previous) => previous.lease_transitions.unwrap_or(0).saturating_add(1),
        };
        LeaseRecord {
            holder: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds()),
            acquire_time: Some(wall),
            renew_time: Some(wall),
            lease_transitions: Some(lease_transitions),
        }
    }

    /// How long another holder's record stays valid after we observed it. The record's own
    /// duration wins (the holder chose it); a missing or non-positive one falls back to ours rather
    /// than to zero, so a malformed record never looks expired early.
    fn record_duration(&self, record: &LeaseRecord) -> Duration {
        match record.lease_duration_seconds {
            Some(secs) if secs > 0 => Duration::from_secs(u64::from(secs.unsigned_abs())),
            _ => self.lease_duration,
        }
    }

    fn lease_duration_seconds(&self) -> i32 {
        // Validation guarantees whole seconds that fit an i32 (config.rs).
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// Drops sub-microsecond digits, so that a time we write compares equal after it is read back
/// from the wire's six fractional digits (the re-read after a renew compares `renewTime`).
pub(crate) fn truncate_to_micros(ts: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(ts.as_microsecond()).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LD: Duration = Duration::from_secs(15);
    const RD: Duration = Duration::from_secs(10);

    fn wall(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("in range")
    }

    fn me() -> Election {
        Election::new("me_1234".into(), LD, RD)
    }

    fn held_by(holder: &str, transitions: i32, renew: i64) -> LeaseRecord {
        LeaseRecord {
            holder: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(wall(0)),
            renew_time: Some(wall(renew)),
            lease_transitions: Some(transitions),
        }
    }

    fn update_record(plan: AcquirePlan) -> LeaseRecord {
        match plan {
            AcquirePlan::Update { record, .. } => record,
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[test]
    fn missing_lease_is_created_with_term_zero() {
        let e = me();
        let t0 = Instant::now();
        match e.plan_acquire(t0, wall(5)) {
            AcquirePlan::Create(r) => {
                assert_eq!(r.holder.as_deref(), Some("me_1234"));
                assert_eq!(r.lease_transitions, Some(0));
                assert_eq!(r.lease_duration_seconds, Some(15));
                assert_eq!(r.acquire_time, Some(wall(5)));
                assert_eq!(r.renew_time, Some(wall(5)));
            }
            other => panic!("expected create, got {other:?}"),
        }
    }

    #[test]
    fn lease_held_by_other_is_respected_until_its_duration_after_observation() {
        let mut e = me();
        let t0 = Instant::now();
        e.observe(Some((held_by("other", 3, 0), "1".into())), t0);
        let just_before = t0 + LD - Duration::from_millis(1);
        assert_eq!(
            e.plan_acquire(just_before, wall(100)),
            AcquirePlan::Follow {
                holder: "other".into()
            }
        );
        let record = update_record(e.plan_acquire(t0 + LD, wall(100)));
        assert_eq!(record.holder.as_deref(), Some("me_1234"));
    }

    #[test]
    fn expiry_ignores_renew_time_and_wall_clock() {
        // A renewTime far in the past (or a wildly skewed wall clock) does not make the Lease
        // expire: only our own monotonic observation counts.
        let mut e = me();
        let t0 = Instant::now();
        e.observe(Some((held_by("other", 3, -1_000_000), "1".into())), t0);
        assert!(matches!(
            e.plan_acquire(t0 + Duration::from_secs(1), wall(1_000_000)),
            AcquirePlan::Follow { .. }
        ));
    }

    #[test]
    fn unchanged_record_keeps_its_first_observation_time() {
        let mut e = me();
        let t0 = Instant::now();
        e.observe(Some((held_by("other", 3, 0), "1".into())), t0);
        e.observe(
            Some((held_by("other", 3, 0), "1".into())),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(e.observed().map(|o| o.at), Some(t0));
        assert!(matches!(
            e.plan_acquire(t0 + LD, wall(0)),
            AcquirePlan::Update { .. }
        ));
    }

    #[test]
    fn changed_record_restarts_the_expiry_clock() {
        let mut e = me();
        let t0 = Instant::now();
        e.observe(Some((held_by("other", 3, 0), "1".into())), t0);
        let t1 = t0 + Duration::from_secs(10);
        e.observe(Some((held_by("other", 3, 2), "2".into())), t1);
        assert!(matches!(
            e.plan_acquire(t0 + LD, wall(0)),
            AcquirePlan::Follow { .. }
        ));
        assert!(matches!(
            e.plan_acquire(t1 + LD, wall(0)),
            AcquirePlan::Update { .. }
        ));
    }

    #[test]
    fn record_duration_wins_over_our_configured_duration() {
        let mut e = me();
        let t0 = Instant::now();
        let mut record = held_by("other", 3, 0);
        record.lease_duration_seconds = Some(40);
        e.observe(Some((record, "1".into())), t0);
        assert!(matches!(
            e.plan_acquire(t0 + Duration::from_secs(39), wall(0)),
            AcquirePlan::Follow { .. }
        ));
        assert!(matches!(
            e.plan_acquire(t0 + Duration::from_secs(40), wall(0)),
            AcquirePlan::Update { .. }
        ));
    }

    #[test]
    fn missing_record_duration_falls_back_to_ours_not_zero() {
        let mut e = me();
        let t0 = Instant::now();
        let mut record = held_by("other", 3, 0);
        record.lease_duration_seconds = None;
        e.observe(Some((record, "1".into())), t0);
        assert!(matches!(
            e.plan_acquire(t0 + Duration::from_secs(1), wall(0)),
            AcquirePlan::Follow { .. }
        ));
    }

    #[test]
    fn empty_holder_is_free_at_once() {
        for holder in [None, Some(String::new())] {
            let mut e = me();
            let t0 = Instant::now();
            let mut record = held_by("x", 7, 0);
            record.holder = holder;
            e.observe(Some((record, "9".into())), t0);
            match e.plan_acquire(t0, wall(1)) {
                AcquirePlan::Update {
                    record,
                    resource_version,
                } => {
                    assert_eq!(resource_version, "9");
                    assert_eq!(record.lease_transitions, Some(8));
                }
                other => panic!("expected update, got {other:?}"),
            }
        }
    }

    #[test]
    fn takeover_bumps_transitions_and_sets_both_times() {
        let mut e = me();
        let t0 = Instant::now();
        e.observe(Some((held_by("other", 3, 0), "1".into())), t0);
        let r = update_record(e.plan_acquire(t0 + LD, wall(50)));
        assert_eq!(r.lease_transitions, Some(4));
        assert_eq!(r.acquire_time, Some(wall(50)));
        assert_eq!(r.renew_time, Some(wall(50)));
        assert_eq!(r.lease_duration_seconds, Some(15));
    }

    #[test]
    fn missing_transitions_count_as_zero() {
        let mut e = me();
        let t0 = Instant::now();
        let mut record = held_by("other", 0, 0);
        record.lease_transitions = None;
        record.holder = None;
        e.observe(Some((record, "1".into())), t0);
        assert_eq!(
            update_record(e.plan_acquire(t0, wall(0))).lease_transitions,
            Some(1)
        );
    }

    #[test]
    fn record_naming_us_while_not_leading_is_reacquired_with_a_new_term() {
        let mut e = me();
        let t0 = Instant::now();
        e.observe(Some((held_by("me_1234", 5, 0), "1".into())), t0);
        let r = update_record(e.plan_acquire(t0, wall(1)));
        assert_eq!(r.lease_transitions, Some(6));
    }

    #[test]
    fn renew_keeps_term_and_acquire_time_and_moves_renew_time() {
        let mut e = me();
        let t0 = Instant::now();
        let term = e.wrote(held_by("me_1234", 4, 0), "10".into(), t0);
        assert_eq!(term, 4);
        let (r, rv) = e.plan_renew(wall(2)).expect("leading");
        assert_eq!(rv, "10");
        assert_eq!(r.lease_transitions, Some(4));
        assert_eq!(r.acquire_time, Some(wall(0)));
        assert_eq!(r.renew_time, Some(wall(2)));
        assert_eq!(r.holder.as_deref(), Some("me_1234"));
    }

    #[test]
    fn no_renew_plan_when_not_leading() {
        let mut e = me();
        e.observe(Some((held_by("me_1234", 4, 0), "1".into())), Instant::now());
        assert_eq!(e.plan_renew(wall(0)), None);
    }

    #[test]
    fn deadline_is_renew_deadline_after_the_last_successful_send() {
        let mut e = me();
        let t0 = Instant::now();
        e.wrote(held_by("me_1234", 1, 0), "1".into(), t0);
        assert_eq!(e.deadline(), Some(t0 + RD));
        let t1 = t0 + Duration::from_secs(2);
        e.wrote(held_by("me_1234", 1, 2), "2".into(), t1);
        assert_eq!(e.deadline(), Some(t1 + RD));
        assert_eq!(e.step_down(), Some(1));
        assert_eq!(e.deadline(), None);
        assert_eq!(e.term(), None);
    }

    #[test]
    fn reread_showing_our_attempted_renew_counts_as_committed() {
        let mut e = me();
        let t0 = Instant::now();
        e.wrote(held_by("me_1234", 2, 0), "1".into(), t0);
        let sent = t0 + Duration::from_secs(2);
        let (attempted, _) = e.plan_renew(wall(2)).expect("leading");
        let got = Some((attempted.clone(), "2".into()));
        assert_eq!(
            e.reconcile(got, &attempted, sent, sent + Duration::from_secs(1)),
            Reconciled::Committed
        );
        assert_eq!(e.last_renew(), Some(sent));
        assert_eq!(e.term(), Some(2));
        let (_, rv) = e.plan_renew(wall(3)).expect("still leading");
        assert_eq!(rv, "2");
    }

    #[test]
    fn reread_still_ours_but_older_adopts_version_without_counting_a_renew() {
        let mut e = me();
        let t0 = Instant::now();
        e.wrote(held_by("me_1234", 2, 0), "1".into(), t0);
        let (attempted, _) = e.plan_renew(wall(2)).expect("leading");
        let got = Some((held_by("me_1234", 2, 0), "7".into()));
        let sent = t0 + Duration::from_secs(2);
        assert_eq!(
            e.reconcile(got, &attempted, sent, sent),
            Reconciled::StillOurs
        );
        assert_eq!(e.last_renew(), Some(t0));
        assert_eq!(e.plan_renew(wall(3)).map(|(_, rv)| rv), Some("7".into()));
    }

    #[test]
    fn reread_showing_another_holder_empty_holder_new_term_or_no_lease_is_a_loss() {
        type Read = Option<(LeaseRecord, String)>;
        let cases: Vec<(Read, Option<&str>)> = vec![
            (Some((held_by("other", 3, 5), "5".into())), Some("other")),
            (Some((held_by("", 2, 5), "5".into())), None),
            (
                Some((held_by("me_1234", 3, 5), "5".into())),
                Some("me_1234"),
            ),
            (None, None),
        ];
        for (read, holder) in cases {
            let mut e = me();
            let t0 = Instant::now();
            e.wrote(held_by("me_1234", 2, 0), "1".into(), t0);
            let (attempted, _) = e.plan_renew(wall(2)).expect("leading");
            assert_eq!(
                e.reconcile(read, &attempted, t0, t0),
                Reconciled::Lost {
                    holder: holder.map(str::to_owned)
                }
            );
        }
    }

    #[test]
    fn release_clears_holder_with_one_second_and_keeps_term() {
        let mut e = me();
        let t0 = Instant::now();
        e.wrote(held_by("me_1234", 6, 0), "3".into(), t0);
        e.step_down();
        let (r, rv) = e.plan_release(wall(9)).expect("we hold it");
        assert_eq!(rv, "3");
        assert_eq!(r.holder.as_deref(), Some(""));
        assert_eq!(r.lease_duration_seconds, Some(1));
        assert_eq!(r.lease_transitions, Some(6));
        assert_eq!(r.acquire_time, Some(wall(9)));
        assert_eq!(r.renew_time, Some(wall(9)));
    }

    #[test]
    fn release_sends_nothing_when_someone_else_holds_it() {
        let mut e = me();
        assert_eq!(e.plan_release(wall(0)), None);
        e.observe(Some((held_by("other", 1, 0), "1".into())), Instant::now());
        assert_eq!(e.plan_release(wall(0)), None);
    }

    #[test]
    fn written_times_survive_the_wire_round_trip() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
        let precise = Timestamp::from_nanosecond(1_800_000_000_123_456_789).expect("in range");
        let written = truncate_to_micros(precise);
        let text = serde_json::to_string(&MicroTime(written)).expect("serialises");
        assert_eq!(text, "\"2027-01-15T08:00:00.123456Z\"");
        let back: MicroTime = serde_json::from_str(&text).expect("parses");
        assert_eq!(back.0, written);
        assert_ne!(back.0, precise);
    }
}
