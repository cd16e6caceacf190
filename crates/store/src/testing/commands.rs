//! Counting the write commands a sink sends, with the driver's command monitoring, and reading
//! back what it wrote: the batching tests of both schedulers compare a batched write with one
//! request per document this way.

use std::collections::BTreeMap;
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
