//! The facts a demo run establishes, and their short human rendering (pure).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::market::Fault;
use crate::procs::Exit;
use crate::results::{AnalyticsValue, DatasetReport};
use crate::services::Service;

/// Everything `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Where the logs are.
    pub run_dir: String,
    /// The services used, and whether the demo started them.
    pub services: Vec<Service>,
    /// The seeded MySQL database.
    pub database: String,
    /// Klines inserted.
    pub seeded_rows: usize,
    /// Symbols seeded and audited.
    pub symbols: Vec<String>,
    /// The injected faults and whether the auditor reported each.
    pub faults: Vec<FaultCheck>,
    /// What dm-loadgen sent.
    pub loadgen: Loadgen,
    /// What dm-consumer counted.
    pub consumer: Consumer,
    /// The auditor's newest result per dataset.
    pub audit: Vec<DatasetReport>,
    /// What dm-analytics wrote.
    pub analytics: Analytics,
    /// The admin endpoints (`/metrics`, `/health/readiness`).
    pub endpoints: Vec<Endpoint>,
    /// How the demo's children exited (empty with `--keep` until Ctrl-C).
    pub exits: Vec<Exit>,
    /// dm-api and the data-quality events (absent when dm-api was not built).
    pub api: Option<Api>,
}

/// What dm-api served, and the data-quality events the auditor published.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Api {
    /// The status page (`http://127.0.0.1:<port>/`).
    pub page: String,
    /// Datasets `GET /v1/datasets` listed.
    pub datasets: usize,
    /// Events received on the subject.
    pub events: u64,
    /// The events' subject.
    pub subject: String,
}

/// One injected fault and its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct FaultCheck {
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// The auditor reported the expected finding for it.
    pub found: bool,
}

/// dm-loadgen's JSON summary, the parts we use.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Loadgen {
    /// Messages published.
    pub published: u64,
    /// By kind (`trade`, `depth`, …).
    pub by_kind: BTreeMap<String, u64>,
    /// Achieved rate.
    #[serde(default)]
    pub rate: f64,
}

/// dm-consumer's counters, read from its `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Consumer {
    /// `data_manager_messages_received_total`.
    pub received: u64,
    /// `data_manager_messages_processed_total` by `event_type`.
    pub accepted_by_kind: BTreeMap<String, u64>,
    /// `data_manager_messages_rejected_total`.
    pub rejected: u64,
    /// Its last stats line (`Message processing stats: …`).
    pub stats_line: Option<String>,
}

/// What dm-analytics wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analytics {
    /// Documents per collection (without `analytics_`) per symbol.
    pub documents: BTreeMap<String, BTreeMap<String, u64>>,
    /// A few values per symbol.
    pub values: BTreeMap<String, Vec<AnalyticsValue>>,
}

/// Where a service's admin server listens.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// `dm-consumer`, `dm-auditor`, `dm-analytics`.
    pub service: String,
    /// `http://127.0.0.1:<port>/metrics`.
    pub metrics: String,
}

impl Summary {
    /// Every injected fault was reported.
    pub fn faults_found(&self) -> bool {
        self.faults.iter().all(|f| f.found)
    }

    /// The consumer counted exactly what the load generator sent, and rejected nothing.
    pub fn counts_match(&self) -> bool {
        let accepted: u64 = self.consumer.accepted_by_kind.values().sum();
        self.consumer.received == self.loadgen.published
            && accepted == self.loadgen.published
            && self.consumer.rejected == 0
    }

    /// Every symbol has analytics documents.
    pub fn analytics_complete(&self) -> bool {
        self.symbols.iter().all(|s| {
            self.analytics
                .documents
                .values()
                .any(|m| m.get(s).is_some_and(|n| *n > 0))
        })
    }

    /// Every child exited cleanly (0 after SIGTERM).
    pub fn exits_clean(&self) -> bool {
        self.exits.iter().all(Exit::clean)
    }

    /// The run showed everything it should.
    pub fn ok(&self) -> bool {
        self.faults_found()
            && self.counts_match()
            && self.analytics_complete()
            && self.exits_clean()
    }

    /// The short human summary.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n== Summary ==");
        self.render_counts(&mut s);
        self.render_audit(&mut s);
        self.render_faults(&mut s);
        self.render_analytics(&mut s);
        self.render_api(&mut s);
        let _ = writeln!(s, "metrics        :");
        for e in &self.endpoints {
            let _ = writeln!(s, "  {:<13} {}", e.service, e.metrics);
        }
        s.push_str(&self.render_exits());
        let _ = writeln!(s, "logs           : {}", self.run_dir);
        let _ = writeln!(
            s,
            "result         : {}",
            if self.ok() {
                "OK"
            } else {
                "FAILED (see above)"
            }
        );
        s
    }

    /// What the load generator sent and what dm-consumer counted.
    fn render_counts(&self, s: &mut String) {
        let mark = if self.counts_match() {
            "ok"
        } else {
            "MISMATCH"
        };
        let _ = writeln!(
            s,
            "load generator : published {} messages at {:.0} msg/s {:?}",
            self.loadgen.published, self.loadgen.rate, self.loadgen.by_kind
        );
        let _ = writeln!(
            s,
            "dm-consumer    : received {}, accepted {:?}, rejected {} [{mark}]",
            self.consumer.received, self.consumer.accepted_by_kind, self.consumer.rejected,
        );
        if let Some(line) = &self.consumer.stats_line {
            let _ = writeln!(s, "  stats line   : {}", stats_tail(line));
        }
    }

    /// One line per audited dataset: status, score and open findings.
    fn render_audit(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "dm-auditor     : {} datasets in {} ({} klines seeded for {})",
            self.audit.len(),
            self.database,
            self.seeded_rows,
            self.symbols.join(", ")
        );
        for d in &self.audit {
            let q = d
                .quality_score
                .map_or_else(|| "-".into(), |q| format!("{q:.1}"));
            let _ = writeln!(
                s,
                "  {:<8} {:<4} {:<8} quality {:>5}  {}",
                d.symbol,
                d.timeframe,
                d.status,
                q,
                d.findings
                    .iter()
                    .map(|f| match &f.start {
                        Some(t) => format!("{}/{} at {t}", f.check, f.severity),
                        None => format!("{}/{}", f.check, f.severity),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }

    /// Each injected fault, found or missing.
    fn render_faults(&self, s: &mut String) {
        let _ = writeln!(s, "injected faults:");
        for f in &self.faults {
            let _ = writeln!(
                s,
                "  {} {:<8} {:<4} {:<15} {}",
                if f.found { "found  " } else { "MISSING" },
                f.fault.symbol,
                f.fault.timeframe,
                f.fault.check,
                f.fault.description
            );
        }
    }

    /// Documents per collection, and a few values per symbol.
    fn render_analytics(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "dm-analytics   : documents per collection {:?}",
            // Collections that exist but stay empty by design (spread) are left out.
            self.analytics
                .documents
                .iter()
                .map(|(k, v)| (k.as_str(), v.values().sum::<u64>()))
                .filter(|&(_, n)| n > 0)
                .collect::<BTreeMap<_, _>>()
        );
        for (symbol, values) in &self.analytics.values {
            let shown: Vec<String> = values
                .iter()
                .map(|v| match v.value.as_f64() {
                    Some(x) => format!("{}={x:.4}", v.field),
                    None => format!("{}={}", v.field, v.value.as_str().unwrap_or("?")),
                })
                .collect();
            let _ = writeln!(s, "  {symbol:<8} {}", shown.join("  "));
        }
    }

    /// Where dm-api serves, and the data-quality events received.
    fn render_api(&self, s: &mut String) {
        match &self.api {
            Some(a) => {
                let _ = writeln!(
                    s,
                    "dm-api         : status page {} ({} datasets at {}v1/datasets, OpenAPI at {}openapi.json)",
                    a.page, a.datasets, a.page, a.page
                );
                let _ = writeln!(
                    s,
                    "quality events : {} on {} (findings opened/resolved, status changes)",
                    a.events, a.subject
                );
            }
            None => {
                let _ = writeln!(s, "dm-api         : not run (build it: cargo build -p api)");
            }
        }
    }
}

impl Summary {
    /// The exit codes line (empty before the children were stopped).
    pub fn render_exits(&self) -> String {
        if self.exits.is_empty() {
            return String::new();
        }
        let exits: Vec<String> = self
            .exits
            .iter()
            .map(|e| match (e.code, e.killed) {
                (_, true) => format!("{} killed", e.service),
                (Some(c), _) => format!("{} {c}", e.service),
                (None, _) => format!("{} signalled", e.service),
            })
            .collect();
        format!("exit codes     : {}\n", exits.join(", "))
    }
}

/// The stats line without the log prefix (time, level, target).
fn stats_tail(line: &str) -> &str {
    line.find("Message processing stats")
        .map_or(line, |i| &line[i..])
}
