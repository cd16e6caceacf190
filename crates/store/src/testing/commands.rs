//! Counting the write commands a sink sends, with the driver's command monitoring, and reading
//! back what it wrote: the batching tests of both schedulers compare a batched write with one
//! request per document this way. Timing the commands, per collection, the same way.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mongodb::bson::{Document, doc};
use mongodb::event::EventHandler;
use mongodb::event::command::CommandEvent;

use crate::MongoSink;

/// The command names that write: `update`, `insert`, `delete`, `findAndModify`.
const WRITE_COMMANDS: [&str; 4] = ["update", "insert", "delete", "findAndModify"];

/// Write commands started, per collection, as the driver reported them.
#[derive(Clone, Default)]
pub struct WriteCommands(Arc<Mutex<BTreeMap<String, usize>>>);

impl WriteCommands {
    /// The counts so far: collection → write commands started on it.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.0.lock().expect("write command counter").clone()
    }

    fn record(&self, event: CommandEvent) {
        if let CommandEvent::Started(s) = event
            && WRITE_COMMANDS.contains(&s.command_name.as_str())
        {
            let coll = s.command.get_str(&s.command_name).unwrap_or("?").to_owned();
            *self
                .0
                .lock()
                .expect("write command counter")
                .entry(coll)
                .or_default() += 1;
        }
    }
}

/// A sink on `url` (application name `batching-test`, 30 s timeout) whose write commands are
/// counted.
pub async fn counted_sink(url: &str) -> (MongoSink, WriteCommands) {
    let counter = WriteCommands::default();
    let c = counter.clone();
    let handler = EventHandler::callback(move |e: CommandEvent| c.record(e));
    let sink = MongoSink::connect_with(url, "batching-test", Duration::from_secs(30), |o| {
        o.command_event_handler = Some(handler);
    })
    .await
    .expect("connect");
    (sink, counter)
}

/// Every document of the collections `colls`, keyed by (collection, `_id`), with `written_at`
/// (the server's clock, which differs between two writes of the same content) left out.
pub async fn contents<S: AsRef<str>>(
    sink: &MongoSink,
    colls: &[S],
) -> BTreeMap<(String, String), Document> {
    let mut out = BTreeMap::new();
    for coll in colls {
        let coll = coll.as_ref();
        let mut cursor = sink.collection(coll).find(doc! {}).await.expect("find");
        while cursor.advance().await.expect("next") {
            let mut d: Document = cursor.deserialize_current().expect("doc");
            d.remove("written_at");
            let id = d.get_str("_id").expect("string _id").to_owned();
            out.insert((coll.to_owned(), id), d);
        }
    }
    out
}

/// How long the driver waited for the commands a sink sent, per command name and collection
/// (`insert health_metrics`, `commitTransaction`): the scale benchmark splits a write phase
/// into the server's time per collection with it.
#[derive(Clone, Default)]
pub struct CommandTimes(Arc<Mutex<Timing>>);

#[derive(Default)]
struct Timing {
    /// Each started command's label, by request id, until it succeeds or fails.
    started: HashMap<i32, String>,
    /// label → (commands, total time).
    totals: BTreeMap<String, (usize, Duration)>,
}

impl CommandTimes {
    /// The totals so far (label → commands and their total time), and a fresh start.
    pub fn take(&self) -> BTreeMap<String, (usize, Duration)> {
        std::mem::take(&mut self.0.lock().expect("command timer").totals)
    }

    fn record(&self, event: CommandEvent) {
        let mut t = self.0.lock().expect("command timer");
        let (id, took) = match event {
            CommandEvent::Started(s) => {
                let label = match s.command.get_str(&s.command_name) {
                    Ok(coll) => format!("{} {coll}", s.command_name),
                    Err(_) => s.command_name,
                };
                t.started.insert(s.request_id, label);
                return;
            }
            CommandEvent::Succeeded(s) => (s.request_id, s.duration),
            CommandEvent::Failed(f) => (f.request_id, f.duration),
            _ => return,
        };
        if let Some(label) = t.started.remove(&id) {
            let total = t.totals.entry(label).or_default();
            total.0 += 1;
            total.1 += took;
        }
    }
}

/// Command times, slowest first: `insert health_metrics 2×0.23 s, update audit_logs 2×0.13 s`.
pub fn describe(totals: &BTreeMap<String, (usize, Duration)>) -> String {
    let mut by_time: Vec<_> = totals.iter().collect();
    by_time.sort_by_key(|(_, (_, took))| std::cmp::Reverse(*took));
    by_time
        .iter()
        .map(|(label, (n, took))| format!("{label} {n}×{:.2} s", took.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A sink on `url` (application name `bench-scale`, `timeout` per call) whose commands are
/// timed.
pub async fn timed_sink(url: &str, timeout: Duration) -> (MongoSink, CommandTimes) {
    let timer = CommandTimes::default();
    let t = timer.clone();
    let handler = EventHandler::callback(move |e: CommandEvent| t.record(e));
    let sink = MongoSink::connect_with(url, "bench-scale", timeout, |o| {
        o.command_event_handler = Some(handler);
    })
    .await
    .expect("connect");
    (sink, timer)
}
