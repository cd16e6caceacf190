//! dm-loadgen: publishes the realistic mix (or an NDJSON capture) to NATS, at a fixed rate or
//! as fast as possible, and prints what it sent as one JSON object.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use events::Kind;
use futures::FutureExt as _;
use loadgen::{DEPTH_LABEL_SYMBOL, Mix};
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
    fn next(&mut self) -> (Option<(Kind, &'static str)>, Bytes) {
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

/// What was published, by kind and by the symbol the consumer will count it under.
#[derive(Default)]
struct Sent {
    messages: u64,
    bytes: u64,
    by_kind: BTreeMap<&'static str, u64>,
    by_symbol: BTreeMap<&'static str, u64>,
}

impl Sent {
    fn record(&mut self, meta: Option<(Kind, &'static str)>, len: usize) {
        self.messages += 1;
        self.bytes += len as u64;
        if let Some((kind, symbol)) = meta {
            *self.by_kind.entry(kind.as_str()).or_default() += 1;
            // Spot depth carries no symbol: the consumer sees the stream label's.
            let seen = if kind == Kind::Depth {
                DEPTH_LABEL_SYMBOL
            } else {
                symbol
            };
            *self.by_symbol.entry(seen).or_default() += 1;
        }
    }

    /// The one JSON object printed at the end.
    fn report(&self, seconds: f64) -> serde_json::Value {
        json!({
            "published": self.messages,
            "bytes": self.bytes,
            "seconds": seconds,
            "rate": self.messages as f64 / seconds.max(1e-9),
            "by_kind": self.by_kind,
            "by_symbol": self.by_symbol,
        })
    }
}

/// The generated mix, the distinct-symbol trades, or the lines of `--file` (the trailing
/// newline ends the last line; it does not start an empty one).
fn open_source(args: &Args) -> anyhow::Result<Source> {
    let Some(path) = &args.file else {
        return Ok(if args.distinct_symbols {
            Source::Distinct { next: 0 }
        } else {
            Source::Mix(Mix::new(args.seed))
        });
    };
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
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
    Ok(Source::File { lines, next: 0 })
}

/// How many messages to publish: `--count`, else a file once unless a duration is given, else
/// no limit.
fn message_limit(source: &Source, args: &Args) -> Option<u64> {
    match (source, args.count, args.duration) {
        (_, Some(count), _) => Some(count),
        (Source::File { lines, .. }, None, None) => Some(lines.len() as u64),
        _ => None,
    }
}

/// Publishes until the limit, the deadline or Ctrl-C. At a fixed rate it publishes in 10 ms
/// slices, each catching up to the ideal count; at rate 0, in bursts of 1000.
async fn publish(
    client: &async_nats::Client,
    args: &Args,
    source: &mut Source,
    limit: Option<u64>,
    started: Instant,
) -> anyhow::Result<Sent> {
    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut sent = Sent::default();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let slice = Duration::from_millis(10);
    loop {
        if limit.is_some_and(|l| sent.messages >= l)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let target = if args.rate == 0 {
            sent.messages + 1000
        } else {
            (started.elapsed().as_secs_f64() * args.rate as f64) as u64 + 1
        };
        let target = limit.map_or(target, |l| target.min(l));
        while sent.messages < target {
            let (meta, body) = source.next();
            let len = body.len();
            client
                .publish(args.subject.clone(), body)
                .await
                .context("publishing")?;
            sent.record(meta, len);
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
    Ok(sent)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut source = open_source(&args)?;
    let limit = message_limit(&source, &args);
    let client = async_nats::ConnectOptions::new()
        .name("dm-loadgen")
        .connect(&args.nats_url)
        .await
        .context("connecting to NATS")?;
    let started = Instant::now();
    let sent = publish(&client, &args, &mut source, limit, started).await?;
    client.flush().await.context("flushing")?;
    println!("{}", sent.report(started.elapsed().as_secs_f64()));
    Ok(())
}
