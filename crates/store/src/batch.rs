//! Batched fenced writes: a cycle's documents as a few unordered `update` commands per
//! collection instead of one round trip per document.
//!
//! Each statement carries the same fence as a single write (`{_id: key, leader_term: {$lte:
//! term}}` for a keyed upsert), so batching changes how many round trips a cycle costs, not
//! what it writes. The fence document is re-claimed before every round of commands, and a
//! round sends at most one chunk per collection, collections in parallel. Chunking is pure
//! ([`chunk`]), tested without a server.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document, doc};

use crate::bson_safe::sanitize;

/// The largest number of statements MongoDB accepts in one write command.
pub const MAX_STATEMENTS: usize = 100_000;

/// How many statement bytes a command may carry: under the 16 MiB document limit with room for
/// the command's own fields.
pub const MAX_BYTES: usize = 12 * 1024 * 1024;

/// How many collections are written at the same time by default.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How a batched write is cut into commands and how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Statements per command (≤ [`MAX_STATEMENTS`]).
    pub max_statements: usize,
    /// Statement bytes per command (≤ [`MAX_BYTES`]).
    pub max_bytes: usize,
    /// Collections written concurrently (≥ 1).
    pub concurrency: usize,
}

impl Default for Batching {
    fn default() -> Batching {
        Batching {
            max_statements: MAX_STATEMENTS,
            max_bytes: MAX_BYTES,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl Batching {
    /// The settings clamped to what the server accepts (tests use tiny chunks).
    pub fn clamped(self) -> Batching {
        Batching {
            max_statements: self.max_statements.clamp(1, MAX_STATEMENTS),
            max_bytes: self.max_bytes.clamp(1, MAX_BYTES),
            concurrency: self.concurrency.max(1),
        }
    }
}

/// One fenced write of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum FencedWrite {
    /// Upsert the document `_id: key`: `set` on every write, `set_on_insert` on creation.
    Upsert {
        /// The document key.
        key: String,
        /// `$set` fields (the sink adds `leader_term` and `leader_identity`).
        set: Document,
        /// `$setOnInsert` fields.
        set_on_insert: Document,
    },
    /// Set `set` on every document matching `filter` that no newer term wrote.
    UpdateMany {
        /// The filter (the sink adds the fence).
        filter: Document,
        /// `$set` fields (the sink adds `leader_term` and `leader_identity`).
        set: Document,
    },
}

impl FencedWrite {
    /// The key reported when the statement is fenced (`*` for a multi-document update).
    pub fn key(&self) -> &str {
        match self {
            FencedWrite::Upsert { key, .. } => key,
            FencedWrite::UpdateMany { .. } => "*",
        }
    }

    /// The `update` statement under `term`/`holder`: the fence in its index-friendly form.
    pub fn statement(&self, term: i64, holder: &str) -> Document {
        let stamped = |set: &Document| {
            let mut set = set.clone();
            set.insert("leader_term", term);
            set.insert("leader_identity", holder);
            sanitize(set)
        };
        match self {
            FencedWrite::Upsert {
                key,
                set,
                set_on_insert,
            } => {
                let mut u = doc! { "$set": stamped(set), "$currentDate": { "written_at": true } };
                if !set_on_insert.is_empty() {
                    u.insert("$setOnInsert", sanitize(set_on_insert.clone()));
                }
                doc! {
                    "q": { "_id": key, "leader_term": { "$lte": term } },
                    "u": u, "upsert": true, "multi": false,
                }
            }
            FencedWrite::UpdateMany { filter, set } => {
                let mut q = filter.clone();
                q.insert("leader_term", doc! { "$lte": term });
                doc! {
                    "q": q,
                    "u": { "$set": stamped(set), "$currentDate": { "written_at": true } },
                    "upsert": false, "multi": true,
                }
            }
        }
    }
}

/// One command's worth of statements, with the key of each (to map errors back).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The `updates` array.
    pub statements: Vec<Bson>,
    /// The key of each statement, by index.
    pub keys: Vec<String>,
}

/// Cuts `writes` into commands of at most `b.max_statements` statements and `b.max_bytes`
/// statement bytes, in order. A key upserted more than once keeps only its last write, so the
/// result never depends on the order the server applies an unordered command in (the last
/// write is what one request per document would have left).
pub fn chunk(writes: &[FencedWrite], term: i64, holder: &str, b: Batching) -> Vec<Chunk> {
    let b = b.clamped();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        if let FencedWrite::Upsert { key, .. } = w {
            last.insert(key, i);
        }
    }
    let mut out = Vec::new();
    let mut cur = Chunk {
        statements: Vec::new(),
        keys: Vec::new(),
    };
    let mut bytes = 0;
    for (i, w) in writes.iter().enumerate() {
        if matches!(w, FencedWrite::Upsert { key, .. } if last.get(key.as_str()) != Some(&i)) {
            continue;
        }
        let s = w.statement(term, holder);
        let size = encoded_len(&s);
        if !cur.statements.is_empty()
            && (cur.statements.len() >= b.max_statements || bytes + size > b.max_bytes)
        {
            out.push(std::mem::replace(
                &mut cur,
                Chunk {
                    statements: Vec::new(),
                    keys: Vec::new(),
                },
            ));
            bytes = 0;
        }
        bytes += size;
        cur.statements.push(Bson::Document(s));
        cur.keys.push(w.key().to_owned());
    }
    if !cur.statements.is_empty() {
        out.push(cur);
    }
    out
}

fn encoded_len(d: &Document) -> usize {
    let mut buf = Vec::new();
    // Writing to a Vec fails only for a document BSON cannot hold; count it as the limit then.
    d.to_writer(&mut buf).map_or(MAX_BYTES, |()| buf.len())
}

/// What the statements of one or more commands did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Statements that succeeded.
    pub succeeded: u64,
    /// Documents matched (`n`, upserts included).
    pub matched: u64,
    /// Documents modified (`nModified`).
    pub modified: u64,
    /// Keys a newer term holds: those statements changed nothing.
    pub fenced: Vec<String>,
}

impl Outcome {
    /// Adds another command's outcome.
    pub fn add(&mut self, o: Outcome) {
        self.succeeded += o.succeeded;
        self.matched += o.matched;
        self.modified += o.modified;
        self.fenced.extend(o.fenced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(key: &str, v: i64) -> FencedWrite {
        FencedWrite::Upsert {
            key: key.into(),
            set: doc! { "v": v },
            set_on_insert: doc! {},
        }
    }

    #[test]
    fn statements_carry_the_simple_fence_and_the_term() {
        let s = upsert("k", 1).statement(7, "me");
        assert_eq!(
            s.get_document("q").expect("q"),
            &doc! { "_id": "k", "leader_term": { "$lte": 7_i64 } }
        );
        let set = s
            .get_document("u")
            .and_then(|u| u.get_document("$set"))
            .expect("$set");
        assert_eq!(set.get_i64("leader_term").ok(), Some(7));
        assert_eq!(set.get_str("leader_identity").ok(), Some("me"));
        assert_eq!(s.get_bool("upsert").ok(), Some(true));
        let m = FencedWrite::UpdateMany {
            filter: doc! { "symbol": "A" },
            set: doc! { "r": 1 },
        }
        .statement(7, "me");
        assert_eq!(
            m.get_document("q").expect("q"),
            &doc! { "symbol": "A", "leader_term": { "$lte": 7_i64 } }
        );
        assert_eq!(m.get_bool("multi").ok(), Some(true));
    }

    #[test]
    fn chunks_respect_both_limits_and_keep_order() {
        let writes: Vec<_> = (0..10).map(|i| upsert(&format!("k{i}"), i)).collect();
        let by_count = Batching {
            max_statements: 3,
            ..Batching::default()
        };
        let c = chunk(&writes, 1, "h", by_count);
        assert_eq!(
            c.iter().map(|c| c.keys.len()).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        assert_eq!(c[1].keys, ["k3", "k4", "k5"]);
        let one = encoded_len(&writes[0].statement(1, "h"));
        let by_bytes = Batching {
            max_bytes: 2 * one,
            ..Batching::default()
        };
        assert_eq!(chunk(&writes, 1, "h", by_bytes).len(), 5);
        assert_eq!(chunk(&writes, 1, "h", Batching::default()).len(), 1);
        assert!(chunk(&[], 1, "h", Batching::default()).is_empty());
    }

    #[test]
    fn a_key_written_twice_keeps_its_last_write_only() {
        let writes = [upsert("a", 1), upsert("b", 2), upsert("a", 3)];
        let c = chunk(&writes, 1, "h", Batching::default());
        assert_eq!(c[0].keys, ["b", "a"]);
        let last = c[0].statements[1].as_document().expect("doc");
        let v = last
            .get_document("u")
            .and_then(|u| u.get_document("$set"))
            .and_then(|s| s.get_i64("v"));
        assert_eq!(v.ok(), Some(3));
    }
}
