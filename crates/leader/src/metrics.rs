//! Every metric the election emits, named and described in one place (listed for operators in
//! `docs/metrics.md`).
//!
//! | Name | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `data_manager_leader_is_leader` | gauge | `lease` | 1 while this process leads, else 0 |
//! | `data_manager_leader_transitions_total` | counter | `lease`, `event` | this process's leadership changes: `acquired`, `lost`, `released` |
//! | `data_manager_leader_renew_failures_total` | counter | `lease`, `reason` | failed renew attempts while leading |
//! | `data_manager_leader_api_seconds` | histogram | `lease`, `op` | duration of one Lease API call |
//! | `data_manager_leader_misconfigured` | gauge | `lease` | 1 while the election fails on RBAC, credentials or a missing namespace |
//! | `data_manager_leader_config_errors_total` | counter | `lease`, `reason` | attempts that failed that way: `forbidden`, `unauthorized`, `namespace_missing` |

use metrics::Unit;

/// Gauge, 1 while this process leads the Lease.
pub const IS_LEADER: &str = "data_manager_leader_is_leader";
/// Counter of this process's leadership changes, by `event`.
pub const TRANSITIONS: &str = "data_manager_leader_transitions_total";
/// Counter of failed renew attempts, by `reason`.
pub const RENEW_FAILURES: &str = "data_manager_leader_renew_failures_total";
/// Histogram of Lease API call durations, by `op` (`get`, `create`, `replace`).
pub const API_SECONDS: &str = "data_manager_leader_api_seconds";

/// Gauge, 1 while the last election attempt failed on a configuration error.
pub const MISCONFIGURED: &str = "data_manager_leader_misconfigured";
/// Counter of election attempts that failed on a configuration error, by `reason`.
pub const CONFIG_ERRORS: &str = "data_manager_leader_config_errors_total";

/// Registers help text and units with the installed recorder. Call once at startup, after the
/// recorder is installed.
pub fn describe() {
    metrics::describe_gauge!(
        IS_LEADER,
        Unit::Count,
        "1 while this process holds the scheduler's Lease, else 0"
    );
    metrics::describe_counter!(
        TRANSITIONS,
        Unit::Count,
        "Leadership changes of this process (acquired, lost, released)"
    );
    metrics::describe_counter!(
        RENEW_FAILURES,
        Unit::Count,
        "Failed Lease renew attempts while leading, by reason"
    );
    metrics::describe_gauge!(
        MISCONFIGURED,
        Unit::Count,
        "1 while leader election fails on RBAC, credentials or a missing namespace, else 0"
    );
    metrics::describe_counter!(
        CONFIG_ERRORS,
        Unit::Count,
        "Leader election attempts that failed on a configuration error, by reason"
    );
    metrics::describe_histogram!(
        API_SECONDS,
        Unit::Seconds,
        "Duration of one Lease API call, by operation"
    );
}

/// A leadership change, as the `event` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Acquired,
    Lost,
    Released,
}

impl Transition {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Acquired => "acquired",
            Self::Lost => "lost",
            Self::Released => "released",
        }
    }
}

pub(crate) fn set_leader(lease: &str, leading: bool) {
    metrics::gauge!(IS_LEADER, "lease" => lease.to_owned()).set(if leading { 1.0 } else { 0.0 });
}

pub(crate) fn transition(lease: &str, event: Transition) {
    metrics::counter!(TRANSITIONS, "lease" => lease.to_owned(), "event" => event.as_str())
        .increment(1);
}

pub(crate) fn renew_failure(lease: &str, reason: &'static str) {
    metrics::counter!(RENEW_FAILURES, "lease" => lease.to_owned(), "reason" => reason).increment(1);
}

pub(crate) fn api_call(lease: &str, op: &'static str, seconds: f64) {
    metrics::histogram!(API_SECONDS, "lease" => lease.to_owned(), "op" => op).record(seconds);
}

pub(crate) fn set_misconfigured(lease: &str, misconfigured: bool) {
    metrics::gauge!(MISCONFIGURED, "lease" => lease.to_owned()).set(if misconfigured {
        1.0
    } else {
        0.0
    });
}

pub(crate) fn config_error(lease: &str, reason: &'static str) {
    metrics::counter!(CONFIG_ERRORS, "lease" => lease.to_owned(), "reason" => reason).increment(1);
}
