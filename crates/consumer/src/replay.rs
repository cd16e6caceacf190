//! Replay mode: a capture file (one envelope per line) through the same processing path,
//! summarised as one JSON object.

use std::path::Path;

use events::{Kind, RejectReason};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::process::{Processor, receive_time_ms};
use crate::tally::Tally;

/// Reads `path` (`-` for stdin) and counts every line. Every `\n`-terminated line is a message,
/// empty ones included (an empty body is a test case, `wire-format.md` §9); a final line
/// without `\n` counts too.
///
/// # Errors
/// When the file cannot be opened or read.
pub async fn replay(path: &Path) -> std::io::Result<Tally> {
    if path.as_os_str() == "-" {
        replay_from(tokio::io::stdin()).await
    } else {
        replay_from(tokio::fs::File::open(path).await?).await
    }
}

async fn replay_from(reader: impl AsyncRead + Unpin) -> std::io::Result<Tally> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut processor = Processor::default();
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        processor.handle(body, receive_time_ms());
    }
    Ok(processor.take())
}

/// The summary object: every key present, zeros included.
pub fn summary(t: &Tally) -> Value {
    let accepted: Map<String, Value> = Kind::ALL
        .iter()
        .map(|&k| (k.as_str().to_owned(), json!(t.accepted(k))))
        .collect();
    let rejected: Map<String, Value> = RejectReason::ALL
        .iter()
        .map(|&r| (r.as_str().to_owned(), json!(t.rejected(r))))
        .collect();
    let symbols: Map<String, Value> = t
        .per_symbol()
        .into_iter()
        .map(|(s, n)| (s.to_string(), json!(n)))
        .collect();
    json!({
        "received": t.received,
        "accepted": accepted,
        "rejected": rejected,
        "symbols": symbols,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn empty_lines_are_messages_and_a_missing_final_newline_still_counts() {
        let input: &[u8] = b"{\"e\":\"trade\",\"s\":\"X\"}\n\n{\"e\":\"trade\",\"s\":\"Y\"}";
        let t = replay_from(input).await.expect("in-memory read");
        assert_eq!(t.received, 3);
        assert_eq!(t.accepted(Kind::Trade), 2);
        assert_eq!(t.rejected(RejectReason::InvalidJson), 1);
    }

    #[test]
    fn summary_has_every_key_with_zeros() {
        let v = summary(&Tally::default());
        assert_eq!(
            v,
            json!({"received":0,"accepted":{"trade":0,"ticker":0,"depth":0,"kline":0,"markPrice":0},
                   "rejected":{"invalid_json":0,"no_payload":0,"unknown_kind":0,"no_symbol":0},"symbols":{}})
        );
    }
}
