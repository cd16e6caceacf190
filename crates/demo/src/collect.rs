//! Collecting what the run produced: dm-consumer's counts, the first audit cycle and the
//! injected faults it reported, and the first analytics cycle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mongodb::Database;

use crate::market::{Fault, TIMEFRAMES};
use crate::probe;
use crate::results::{self, DatasetReport};
use crate::run::{DemoError, Stack, step};
use crate::summary::{Analytics, Consumer, FaultCheck};

/// dm-consumer's counts once it has received `published` messages, or when `within` has
/// passed (the summary then shows the shortfall).
pub(crate) async fn counted(port: u16, published: u64, within: Duration) -> Consumer {
    let deadline = Instant::now() + within;
    loop {
        let c = consumer_counts(port).await;
        if c.received >= published || Instant::now() > deadline {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// dm-consumer's received, accepted (by kind) and rejected counters from its `/metrics`.
async fn consumer_counts(port: u16) -> Consumer {
    let Some((_, m)) = probe::get(port, "/metrics").await else {
        return Consumer::default();
    };
    let n = |x: Option<f64>| x.unwrap_or(0.0) as u64;
    let mut by_kind = BTreeMap::new();
    for kind in events::Kind::ALL.map(events::Kind::as_str) {
        let v = n(probe::sample(
            &m,
            "data_manager_messages_processed_total",
            &[("event_type", kind)],
        ));
        if v > 0 {
            by_kind.insert(kind.to_owned(), v);
        }
    }
    Consumer {
        received: n(probe::sample(
            &m,
            "data_manager_messages_received_total",
            &[],
        )),
        accepted_by_kind: by_kind,
        rejected: n(probe::sample(
            &m,
            "data_manager_messages_rejected_total",
            &[],
        )),
        stats_line: None,
    }
}

/// Waits for the auditor's first complete cycle (a success timestamp, and a health document
/// for every klines and trades dataset), then reads its newest result per dataset.
pub(crate) async fn audit(
    stack: &mut Stack,
    auditor_port: u16,
    db: &Database,
    symbols: &[String],
    deadline: Instant,
) -> Result<Vec<DatasetReport>, DemoError> {
    // The trades datasets (one per symbol) are written after the klines ones.
    let datasets = symbols.len() * (TIMEFRAMES.len() + 1);
    step(format!(
        "waiting for the first audit cycle ({datasets} datasets)"
    ));
    loop {
        check_alive(stack)?;
        let done = probe::get(auditor_port, "/metrics")
            .await
            .and_then(|(_, m)| {
                probe::sample(&m, "data_manager_audit_last_success_timestamp_seconds", &[])
            });
        if done.is_some_and(|t| t > 0.0) && results::audited_datasets(db).await? >= datasets {
            break;
        }
        if Instant::now() > deadline {
            return Err(DemoError::Timeout("no completed audit cycle".into()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let audited: Vec<&str> = TIMEFRAMES.iter().copied().chain(["trades"]).collect();
    Ok(results::audit(db, symbols, &audited).await?)
}

/// Whether the audit reported each injected fault: an open finding of the fault's check on
/// its dataset, starting at the fault's instant (stale and trades findings have no instant to
/// compare). Pure.
pub(crate) fn faults_found(faults: &[Fault], audit: &[DatasetReport]) -> Vec<FaultCheck> {
    faults
        .iter()
        .map(|f| FaultCheck {
            found: audit.iter().any(|d| {
                d.symbol == f.symbol
                    && d.timeframe == f.timeframe
                    && d.findings.iter().any(|x| {
                        x.check == f.check
                            && (f.check == "stale"
                                || f.timeframe == "trades"
                                || same_instant(x.start.as_deref(), f.at))
                    })
            }),
            fault: f.clone(),
        })
        .collect()
}

fn same_instant(text: Option<&str>, at: chrono::DateTime<chrono::Utc>) -> bool {
    text.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t == at)
}

/// Waits until every symbol has analytics documents and two polls a second apart see the same
/// counts (or `deadline` passes), then reads a few values per symbol.
pub(crate) async fn analytics(
    stack: &mut Stack,
    db: &Database,
    symbols: &[String],
    deadline: Instant,
) -> Result<Analytics, DemoError> {
    step("waiting for the first analytics cycle (documents for every symbol)");
    let mut analytics = Analytics::default();
    let mut previous = BTreeMap::new();
    loop {
        check_alive(stack)?;
        let counts = results::analytics_counts(db).await?;
        let every = symbols
            .iter()
            .all(|s| counts.values().any(|m| m.get(s).is_some_and(|n| *n > 0)));
        // Settled: two polls a second apart see the same documents.
        if (every && counts == previous) || Instant::now() > deadline {
            analytics.documents = counts;
            break;
        }
        previous = counts;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for s in symbols {
        let values = results::analytics_values(db, s).await?;
        analytics.values.insert(s.clone(), values);
    }
    Ok(analytics)
}

/// An error naming the first dm-* child that has exited.
fn check_alive(stack: &mut Stack) -> Result<(), DemoError> {
    for p in &mut stack.children {
        if let Some(status) = p.exited() {
            return Err(DemoError::Child(format!(
                "{} exited early with {status} (see {})",
                p.name,
                p.log.display()
            )));
        }
    }
    Ok(())
}
