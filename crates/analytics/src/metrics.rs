//! dm-analytics' metrics, defined once.
//!
//! | Name | Type | Labels | Meaning |
//! |---|---|---|---|
//! | `data_manager_analytics_cycle_seconds` | histogram | – | duration of a cycle (read, compute, write) |
//! | `data_manager_analytics_cycles_total` | counter | `outcome` = ok / source_error / sink_error / fenced / stopped | cycles by outcome |
//! | `data_manager_analytics_documents_written_total` | counter | `metric` | documents upserted |
//! | `data_manager_analytics_skipped_total` | counter | `metric`, `reason` | metrics skipped: too_few_candles / too_few_symbols / too_few_joined_rows / missing_inputs, or the symbol × timeframe could not be read: read_error / schema_mismatch / undecodable_row, or the correlation matrix document would pass the 16 MiB document limit: too_large |
//! | `data_manager_analytics_fenced_total` | counter | – | terms ended by a fenced write (each makes the replica step down) |
//! | `data_manager_analytics_leader_status` | gauge | – | 1 while this process leads and computes |
//! | `data_manager_analytics_last_success_timestamp_seconds` | gauge | – | Unix time of the last written cycle |

use std::collections::BTreeMap;

use crate::metric::{Kind, Skip};

/// Cycle duration histogram.
pub const CYCLE_SECONDS: &str = "data_manager_analytics_cycle_seconds";
/// Cycles by outcome.
pub const CYCLES: &str = "data_manager_analytics_cycles_total";
/// Documents written by metric.
pub const DOCUMENTS_WRITTEN: &str = "data_manager_analytics_documents_written_total";
/// Skipped metrics by metric and reason.
pub const SKIPPED: &str = "data_manager_analytics_skipped_total";
/// 1 while leading.
pub const LEADER_STATUS: &str = "data_manager_analytics_leader_status";
/// Unix time of the last successful cycle.
pub const LAST_SUCCESS: &str = "data_manager_analytics_last_success_timestamp_seconds";
/// Terms ended by a fenced write.
pub const FENCED: &str = "data_manager_analytics_fenced_total";

/// The `metric` label of the correlation matrix documents.
pub const MATRIX_LABEL: &str = "correlation_matrix";

pub use elected_loop::Outcome;

/// The cycle metrics the scheduler records.
pub const CYCLE: elected_loop::CycleMetrics = elected_loop::CycleMetrics {
    cycle_seconds: CYCLE_SECONDS,
    cycles: CYCLES,
    last_success: LAST_SUCCESS,
    leader_status: LEADER_STATUS,
    fenced: FENCED,
};

/// Registers help of this binary's own metrics (the scheduler describes and zeroes the cycle series).
pub fn describe() {
    metrics::describe_counter!(DOCUMENTS_WRITTEN, "Metric documents upserted, by metric");
    metrics::describe_counter!(
        SKIPPED,
        "Metrics skipped for insufficient data, by metric and reason"
    );
}

/// Counts written documents per metric label.
pub fn written(counts: &BTreeMap<&'static str, u64>) {
    for (label, n) in counts {
        metrics::counter!(DOCUMENTS_WRITTEN, "metric" => *label).increment(*n);
    }
}

/// Counts skipped metrics.
pub fn skipped(counts: &BTreeMap<(Kind, Skip), u64>) {
    for ((k, r), n) in counts {
        metrics::counter!(SKIPPED, "metric" => k.as_str(), "reason" => r.as_str()).increment(*n);
    }
}
