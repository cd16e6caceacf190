//! Replay mode: a capture file (one envelope per line) through the same processing path,
//! summarised as one JSON object.

use std::path::Path;

use events::{Kind, RejectReason};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::process::{Processor, receive_time_ms};
use crate::symbols::SymbolLabels;
use crate::tally::Tally;

/// Reads `path` (`-` for stdin) and counts every line. Every `\n`-terminated line is a message,
/// empty ones included (an empty body is a message, rejected as `invalid_json`); a final line
/// without `\n` counts too.
///
/// Memory stays bounded whatever the file holds: counts per symbol exist only for the symbols
/// the processor's [`SymbolLabels`] admits, the rest are summed as `other`.
///
/// # Errors
/// When the file cannot be opened or read.
pub async fn replay(path: &Path, processor: Processor) -> std::io::Result<Processor> {
    if path.as_os_str() == "-" {
        replay_from(tokio::io::stdin(), processor).await
    } else {
        replay_from(tokio::fs::File::open(path).await?, processor).await
    }
}

async fn replay_from(
    reader: impl AsyncRead + Unpin,
    mut processor: Processor,
) -> std::io::Result<Processor> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        processor.handle(body, receive_time_ms());
    }
    Ok(processor)
}

/// The summary object: every key present, zeros included. `symbols` holds the symbols the
/// label budget admitted (`MAX_SYMBOL_LABELS`, reserved ones first), and `other` with the
/// count of the rest when there were any.
pub fn summary(t: &Tally, labels: &SymbolLabels) -> Value {
    let c = &t.counts;
    let accepted: Map<String, Value> = Kind::ALL
        .iter()
        .map(|&k| (k.as_str().to_owned(), json!(c.accepted(k))))
        .collect();
    let rejected: Map<String, Value> = RejectReason::ALL
        .iter()
        .map(|&r| (r.as_str().to_owned(), json!(c.rejected(r))))
        .collect();
    let (named, other) = t.per_symbol(labels);
    let mut symbols: Map<String, Value> = named
        .into_iter()
        .map(|(s, n)| (s.to_string(), json!(n)))
        .collect();
    if other > 0 {
        symbols.insert(crate::metrics::OTHER_SYMBOL.to_owned(), json!(other));
    }
    json!({
        "received": c.received,
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
        let mut p = replay_from(input, Processor::default())
            .await
            .expect("in-memory read");
        let t = p.take().counts;
        assert_eq!(t.received, 3);
        assert_eq!(t.accepted(Kind::Trade), 2);
        assert_eq!(t.rejected(RejectReason::InvalidJson), 1);
    }

    #[tokio::test]
    async fn symbols_beyond_the_budget_are_summed_as_other() {
        let input: String = (0..1000)
            .map(|i| format!("{{\"e\":\"trade\",\"s\":\"S{i}\"}}\n"))
            .collect();
        let btc = events::Symbol::parse("BTCUSDT").expect("valid");
        let processor = Processor::new(SymbolLabels::new(3, &[btc]), 86_400_000);
        let mut p = replay_from(input.as_bytes(), processor)
            .await
            .expect("in-memory read");
        let labels = p.labels().clone();
        let v = summary(&p.take(), &labels);
        assert_eq!(
            v["symbols"],
            json!({"S0": 1, "S1": 1, "other": 998}),
            "BTCUSDT is reserved but unseen, so it is not listed"
        );
    }

    #[test]
    fn summary_has_every_key_with_zeros() {
        let v = summary(&Tally::default(), &SymbolLabels::new(1, &[]));
        assert_eq!(
            v,
            json!({"received":0,"accepted":{"trade":0,"ticker":0,"depth":0,"kline":0,"markPrice":0},
                   "rejected":{"invalid_json":0,"no_payload":0,"unknown_kind":0,"no_symbol":0},"symbols":{}})
        );
    }
}
