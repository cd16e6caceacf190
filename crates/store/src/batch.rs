//! Batched fenced writes: a cycle's documents as a few unordered `update` (or `insert`)
//! commands per collection instead of one round trip per document.
//!
//! Each statement carries the same fence as a single write (`{_id: key, leader_term: {$lte:
//! term}}` for a keyed upsert), so batching changes how many round trips a cycle costs, not
//! what it writes. Documents a cycle creates (its health history) go out as `insert`s, which
//! cannot overwrite anything; a key that already exists is re-sent as the fenced upsert. A round
//! sends at most one chunk per collection, in one transaction that first re-claims the fence
//! document. Chunking is pure
//! ([`chunk`]), tested without a server.

use std::collections::HashMap;

use mongodb::bson::{Bson, Document, doc};

use crate::bson_safe::sanitize;

/// The largest number of statements MongoDB accepts in one write command.
pub const MAX_STATEMENTS: usize = 100_000;

/// Statements per command by default. Every round is one transaction, which lands only if it
/// commits within the call timeout: a bounded command keeps each round's work bounded on a
/// slow server (MongoDB's own advice is to keep a transaction to about a thousand documents),
/// at the cost of one more round per thousand documents.
pub const DEFAULT_STATEMENTS: usize = 1_000;

/// How many statement bytes a command may carry: under the 16 MiB document limit with room for
/// the command's own fields.
pub const MAX_BYTES: usize = 12 * 1024 * 1024;

/// How many collections share a round (one transaction) by default.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// How a batched write is cut into commands and how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Statements per command (≤ [`MAX_STATEMENTS`]).
    pub max_statements: usize,
    /// Statement bytes per command (≤ [`MAX_BYTES`]).
    pub max_bytes: usize,
    /// Collections per round (≥ 1): sent one after the other inside the round's transaction
    /// (all at once on a server without transactions).
    pub concurrency: usize,
}

impl Default for Batching {
    fn default() -> Batching {
        Batching {
            max_statements: DEFAULT_STATEMENTS,
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
    /// Create the document `_id: key` with `set`: a key new to the collection (a cycle's
    /// health document), sent in an `insert` command. The fence holds because an insert never
    /// replaces a document: on a key that exists the server refuses it (E11000) and the key is
    /// re-sent, in a later round after a fresh fence claim, as the fenced [`FencedWrite::Upsert`]
    /// of the same fields, which overwrites only a document of this term or an older one. So a
    /// newer term's document is never overwritten, and what an insert can add (a key nobody
    /// wrote yet) is what the fenced upsert adds on a missing key; the fence claim before each
    /// round stops a stale term exactly as it stops its updates. The result is the document the
    /// upsert would leave, except that `written_at` is the writer's clock when it sent the
    /// command (an insert cannot ask for the server's).
    Insert {
        /// The document key.
        key: String,
        /// Its fields (the sink adds `leader_term`, `leader_identity` and `written_at`).
        set: Document,
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
            FencedWrite::Upsert { key, .. } | FencedWrite::Insert { key, .. } => key,
            FencedWrite::UpdateMany { .. } => "*",
        }
    }

    /// Whether it goes out in an `insert` command.
    pub fn is_insert(&self) -> bool {
        matches!(self, FencedWrite::Insert { .. })
    }

    /// The fenced upsert an [`FencedWrite::Insert`] falls back to when its key exists (the
    /// write itself otherwise).
    pub fn as_upsert(&self) -> FencedWrite {
        match self {
            FencedWrite::Insert { key, set } => FencedWrite::Upsert {
                key: key.clone(),
                set: set.clone(),
                set_on_insert: Document::new(),
            },
            other => other.clone(),
        }
    }

    /// The document an [`FencedWrite::Insert`] creates under `term`/`holder`: `_id` first, then
    /// the fields in name order (the order an upsert leaves), `written_at` a placeholder the
    /// sink sets when it sends the command.
    pub fn document(&self, term: i64, holder: &str) -> Document {
        let (key, set) = match self {
            FencedWrite::Insert { key, set } => (key, set),
            other => return other.as_upsert().statement(term, holder),
        };
        let mut fields = stamp(set, term, holder);
        fields.insert("written_at", Bson::Null);
        let mut names: Vec<String> = fields.keys().cloned().collect();
        names.sort_unstable();
        let mut d = doc! { "_id": key };
        for name in names {
            if let Some(v) = fields.remove(&name) {
                d.insert(name, v);
            }
        }
        d
    }

    /// The `update` statement under `term`/`holder`: the fence in its index-friendly form.
    pub fn statement(&self, term: i64, holder: &str) -> Document {
        let stamped = |set: &Document| stamp(set, term, holder);
        match self {
            FencedWrite::Insert { .. } => self.as_upsert().statement(term, holder),
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

/// `set` with the writer's term and identity, made BSON-safe.
fn stamp(set: &Document, term: i64, holder: &str) -> Document {
    let mut set = set.clone();
    set.insert("leader_term", term);
    set.insert("leader_identity", holder);
    sanitize(set)
}

/// One command's worth of statements, with the key of each (to map errors back).
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// The `updates` array, or the `documents` array of an `insert`.
    pub statements: Vec<Bson>,
    /// The key of each statement, by index.
    pub keys: Vec<String>,
    /// For an `insert` command, the fenced upsert of each document, by index (sent instead
    /// when its key exists); empty for an `update` command.
    pub fallback: Vec<FencedWrite>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            statements: Vec::new(),
            keys: Vec::new(),
            fallback: Vec::new(),
        }
    }

    /// Whether it is an `insert` command.
    pub fn is_insert(&self) -> bool {
        !self.fallback.is_empty()
    }
}

/// Cuts `writes` into commands of at most `b.max_statements` statements and `b.max_bytes`
/// statement bytes, in order, a new command wherever the writes change between updates and
/// inserts. A key written more than once keeps only its last write, so the result never
/// depends on the order the server applies an unordered command in (the last write is what
/// one request per document would have left).
pub fn chunk(writes: &[FencedWrite], term: i64, holder: &str, b: Batching) -> Vec<Chunk> {
    let b = b.clamped();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        if !matches!(w, FencedWrite::UpdateMany { .. }) {
            last.insert(w.key(), i);
        }
    }
    let mut out = Vec::new();
    let mut cur = Chunk::new();
    let mut bytes = 0;
    for (i, w) in writes.iter().enumerate() {
        if !matches!(w, FencedWrite::UpdateMany { .. }) && last.get(w.key()) != Some(&i) {
            continue;
        }
        let s = if w.is_insert() {
            w.document(term, holder)
        } else {
            w.statement(term, holder)
        };
        let size = encoded_len(&s);
        if !cur.statements.is_empty()
            && (cur.statements.len() >= b.max_statements
                || bytes + size > b.max_bytes
                || cur.is_insert() != w.is_insert())
        {
            out.push(std::mem::replace(&mut cur, Chunk::new()));
            bytes = 0;
        }
        bytes += size;
        cur.statements.push(Bson::Document(s));
        cur.keys.push(w.key().to_owned());
        if w.is_insert() {
            cur.fallback.push(w.as_upsert());
        }
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

    fn insert(key: &str, v: i64) -> FencedWrite {
        FencedWrite::Insert {
            key: key.into(),
            set: doc! { "v": v, "a": "x" },
        }
    }

    #[test]
    fn inserts_go_in_their_own_commands_with_their_fenced_upserts() {
        let writes = [
            upsert("f1", 1),
            insert("h1", 1),
            insert("h2", 2),
            upsert("f2", 2),
        ];
        let c = chunk(&writes, 4, "me", Batching::default());
        let shape: Vec<(bool, Vec<String>)> =
            c.iter().map(|c| (c.is_insert(), c.keys.clone())).collect();
        assert_eq!(
            shape,
            [
                (false, vec!["f1".to_owned()]),
                (true, vec!["h1".to_owned(), "h2".to_owned()]),
                (false, vec!["f2".to_owned()]),
            ]
        );
        assert_eq!(c[1].fallback, [upsert_of("h1", 1), upsert_of("h2", 2)]);
        let d = c[1].statements[0].as_document().expect("doc");
        let names: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "_id",
                "a",
                "leader_identity",
                "leader_term",
                "v",
                "written_at"
            ]
        );
        assert_eq!(d.get_str("_id").ok(), Some("h1"));
        assert_eq!(d.get_i64("leader_term").ok(), Some(4));
        // Its fallback is the fenced upsert of the same fields.
        let q = insert("h1", 1).statement(4, "me");
        assert_eq!(
            q.get_document("q").expect("q"),
            &doc! { "_id": "h1", "leader_term": { "$lte": 4_i64 } }
        );
    }

    fn upsert_of(key: &str, v: i64) -> FencedWrite {
        FencedWrite::Upsert {
            key: key.into(),
            set: doc! { "v": v, "a": "x" },
            set_on_insert: doc! {},
        }
    }
}
