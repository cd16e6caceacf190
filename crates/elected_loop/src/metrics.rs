//! The cycle metrics every scheduler records, under the names its binary defines.
//!
//! The names stay literals in each binary's `metrics.rs` (the chart's alerts and dashboards
//! refer to them); this module only records through them.

/// A binary's names for the shared cycle metrics.
#[derive(Debug, Clone, Copy)]
pub struct CycleMetrics {
    /// Histogram: duration of a cycle, seconds.
    pub cycle_seconds: &'static str,
    /// Counter: cycles by `outcome` ([`Outcome::as_str`]).
    pub cycles: &'static str,
    /// Gauge: Unix time of the last successful cycle.
    pub last_success: &'static str,
    /// Gauge: 1 while this replica leads.
    pub leader_status: &'static str,
    /// Counter: terms that ended because a write was fenced (a newer term, or a Lease whose
    /// terms went backwards); each one makes the replica step down.
    pub fenced: &'static str,
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Read, processed and written.
    Ok,
    /// MySQL failed.
    SourceError,
    /// Mongo failed.
    SinkError,
    /// A newer leader term wrote first.
    Fenced,
    /// The term ended (or shutdown began) during the cycle, which stopped between writes.
    Stopped,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::SourceError,
        Outcome::SinkError,
        Outcome::Fenced,
        Outcome::Stopped,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::SourceError => "source_error",
            Outcome::SinkError => "sink_error",
            Outcome::Fenced => "fenced",
            Outcome::Stopped => "stopped",
        }
    }
}

impl CycleMetrics {
    /// Registers help and units of the cycle metrics; `noun` names the work ("audit").
    pub fn describe(&self, noun: &str) {
        let mut title = noun.to_owned();
        if let Some(first) = title.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        metrics::describe_histogram!(
            self.cycle_seconds,
            metrics::Unit::Seconds,
            format!("Duration of {article} {noun} cycle")
        );
        metrics::describe_counter!(self.cycles, format!("{title} cycles by outcome"));
        metrics::describe_gauge!(
            self.last_success,
            metrics::Unit::Seconds,
            "Unix time of the last successful cycle"
        );
        metrics::describe_gauge!(
            self.leader_status,
            format!("1 while this replica leads and runs {noun} cycles")
        );
        metrics::describe_counter!(
            self.fenced,
            "Terms ended by a fenced write; each makes this replica step down"
        );
    }

    /// Zeroes every outcome's counter and the leader gauge, so the series exist from the start.
    pub fn zero(&self) {
        for o in Outcome::ALL {
            metrics::counter!(self.cycles, "outcome" => o.as_str()).absolute(0);
        }
        metrics::gauge!(self.leader_status).set(0.0);
        metrics::counter!(self.fenced).absolute(0);
    }

    /// Counts a term ended by a fenced write.
    pub fn fenced(&self) {
        metrics::counter!(self.fenced).increment(1);
    }

    /// Counts a finished cycle.
    pub fn cycle(&self, outcome: Outcome, seconds: f64) {
        metrics::counter!(self.cycles, "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!(self.cycle_seconds).record(seconds);
    }

    /// Records a cycle whose results were written, at `unix_seconds`.
    pub fn success(&self, unix_seconds: f64) {
        metrics::gauge!(self.last_success).set(unix_seconds);
    }
}

/// Sets the leader gauge while alive; the future holding it is dropped when the term ends.
pub(crate) struct LeadingGauge(&'static str);

impl LeadingGauge {
    pub(crate) fn new(name: &'static str) -> LeadingGauge {
        metrics::gauge!(name).set(1.0);
        LeadingGauge(name)
    }
}

impl Drop for LeadingGauge {
    fn drop(&mut self) {
        metrics::gauge!(self.0).set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: CycleMetrics = CycleMetrics {
        cycle_seconds: "t_audit_cycle_seconds",
        cycles: "t_audit_cycles_total",
        last_success: "t_audit_last_success_timestamp_seconds",
        leader_status: "t_audit_leader_status",
        fenced: "t_audit_fenced_total",
    };

    #[test]
    fn cycle_metrics_are_described_and_zeroed_under_the_binary_names() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            NAMES.describe("audit");
            NAMES.zero();
        });
        let text = handle.render();
        assert!(
            text.contains("# HELP t_audit_cycles_total Audit cycles by outcome"),
            "{text}"
        );
        assert!(
            text.contains(r#"t_audit_cycles_total{outcome="fenced"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(
                "# HELP t_audit_leader_status 1 while this replica leads and runs audit cycles"
            ),
            "{text}"
        );
        assert!(text.contains("t_audit_leader_status 0"), "{text}");
        assert!(text.contains("t_audit_fenced_total 0"), "{text}");
    }
}
