//! dm-loadgen: publishes the realistic mix (or an NDJSON capture) to NATS, at a fixed rate or
//! as fast as possible, and prints what it sent as one JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use futures::FutureExt as _;
use loadgen::{Mix, MixKind};
use serde_json::json;

/// Publishes market-data envelopes to NATS.
#[derive(Debug, Parser)]
#[command(name = "dm-loadgen", version)]
struct Args {
    /// NATS server URL.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    nats_url: String,
    /// Subject to publish on.
    #[arg(
        long,
        env = "NATS_CONSUMER_SUBJECT",
        default_value = "binance.futures.websocket.data"
    )]
    subject: String,
    /// Messages per second; 0 publishes as fast as possible.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Stop after this many messages (default: run until --duration or Ctrl-C).
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this long, in seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Publish the lines of this NDJSON file (each line one message, empty lines included)
    /// instead of the generated mix; with --count beyond the file it starts over.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Seed of the generated mix.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Publish trades whose symbols are all different (`D0`, `D1`, … in base 36) instead of
    /// the mix: the hostile input for the consumer's per-symbol memory.
    #[arg(long, conflicts_with = "file")]
    distinct_symbols: bool,
}

enum Source {
    Mix(Mix),
    File { lines: Vec<Bytes>, next: usize },
    Distinct { next: u64 },
}

/// `n` in base 36, upper case: a valid symbol for every `n`.
fn base36(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

impl Source {
    fn next(&mut self) -> (Option<(MixKind, &'static str)>, Bytes) {
        match self {
            Source::Mix(mix) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                let (kind, symbol, body) = mix.next_message(now);
                (Some((kind, symbol)), Bytes::from(body))
            }
            Source::File { lines, next } => {
                let body = lines[*next % lines.len()].clone();
                *next += 1;
                (None, body)
            }
            Source::Distinct { next } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let body = format!(
                    r#"{{"stream":"d@trade","data":{{"e":"trade","E":{now},"s":"D{}","p":"1.0","q":"1"}}}}"#,
                    base36(*next)
                );
                *next += 1;
                (None, Bytes::from(body))
            }
        }
    }
}

fn kind_name(k: MixKind) -> &'static str {
    match k {
        MixKind::Trade => "trade",
        MixKind::Depth => "depth",
        MixKind::Ticker => "ticker",
        MixKind::Kline => "kline",
        MixKind::MarkPrice => "markPrice",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut source = match &args.file {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let mut lines: Vec<Bytes> = text
                .split(|&b| b == b'\n')
                .map(Bytes::copy_from_slice)
                .collect();
            if text.ends_with(b"\n") {
                lines.pop();
            }
            if lines.is_empty() {
                bail!("{} has no lines", path.display());
            }
            Source::File { lines, next: 0 }
        }
        None if args.distinct_symbols => Source::Distinct { next: 0 },
        None => Source::Mix(Mix::new(args.seed)),
    };
    // A file is published once unless a count or a duration says otherwise.
    let limit = match (&source, args.count, args.duration) {
        (_, Some(count), _) => Some(count),
        (Source::File { lines, .. }, None, None) => Some(lines.len() as u64),
        _ => None,
    };
    let client = async_nats::ConnectOptions::new()
        .name("dm-loadgen")
        .connect(&args.nats_url)
        .await
        .context("connecting to NATS")?;
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let started = Instant::now();
    let mut sent = 0u64;
    let mut bytes = 0u64;
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_symbol: BTreeMap<&str, u64> = BTreeMap::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // Fixed rate: publish in 10 ms slices, each slice catching up to the ideal count.
    let slice = Duration::from_millis(10);
    loop {
        if limit.is_some_and(|l| sent >= l) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let target = if args.rate == 0 {
            sent + 1000
        } else {
            (started.elapsed().as_secs_f64() * args.rate as f64) as u64 + 1
        };
        let target = limit.map_or(target, |l| target.min(l));
        while sent < target {
            let (meta, body) = source.next();
            bytes += body.len() as u64;
            client
                .publish(args.subject.clone(), body)
                .await
                .context("publishing")?;
            sent += 1;
            if let Some((kind, symbol)) = meta {
                *by_kind.entry(kind_name(kind)).or_default() += 1;
                // Spot depth carries no symbol: the consumer sees the stream label's.
                let seen = if kind == MixKind::Depth {
                    "BTCUSDT"
                } else {
                    symbol
                };
                *by_symbol.entry(seen).or_default() += 1;
            }
        }
        if args.rate != 0 {
            tokio::select! {
                () = tokio::time::sleep(slice) => {}
                _ = &mut ctrl_c => break,
            }
        } else if (&mut ctrl_c).now_or_never().is_some() {
            break;
        }
    }
    client.flush().await.context("flushing")?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "published": sent,
            "bytes": bytes,
            "seconds": secs,
            "rate": sent as f64 / secs.max(1e-9),
            "by_kind": by_kind,
            "by_symbol": by_symbol,
        })
    );
    Ok(())
}
