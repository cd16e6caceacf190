//! End to end through a local nats-server: dm-consumer against a count-only async-nats
//! subscriber, same publisher, same messages, same machine, one run. Run: `make bench-e2e`.
//!
//! A plain flood overruns any subscriber that does work (its buffer fills and the client
//! drops), so the publisher keeps at most `WINDOW` messages ahead of the subscriber's reported
//! progress, so each subscriber is measured at the rate it sustains without loss. Throughput is measured between 10 % and 90 % progress;
//! CPU is read from /proc over the same span, peak RSS from VmHWM. A run is valid only if the
//! subscriber counted every message. Both subscribers report progress every 10 ms, so the
//! window throttles them alike.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use testkit::free_port;

const MESSAGES: u64 = 2_000_000;
const POOL: usize = 20_000;
const WINDOW: u64 = 20_000;
const CAPACITY: &str = "65536";
const NOW_MS: i64 = 1_761_055_392_345;
/// How often each subscriber's progress reaches the publisher (baseline: a progress message;
/// dm-consumer: its FLUSH_INTERVAL, scraped from /metrics at twice that rate).
const PROGRESS_EVERY: Duration = Duration::from_millis(10);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--count-only") {
        count_only(&args[pos + 1], &args[pos + 2], &args[pos + 3]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench -- --list` probes benches; nothing to list.
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(run());
}

/// The baseline subscriber: counts messages and reports progress, nothing else.
fn count_only(url: &str, subject: &str, progress: &str) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .subscription_capacity(CAPACITY.parse().expect("number"))
            .connect(url)
            .await
            .expect("connect");
        let mut sub = client
            .queue_subscribe(subject.to_owned(), "bench".to_owned())
            .await
            .expect("subscribe");
        client.flush().await.expect("flush");
        client
            .publish(progress.to_owned(), "0".into())
            .await
            .expect("ready");
        // Progress is reported on a timer, like dm-consumer's metrics flush, so both
        // subscribers give the publisher equally fresh progress.
        let counted = Arc::new(AtomicU64::new(0));
        let reporter = {
            let (client, progress, counted) =
                (client.clone(), progress.to_owned(), Arc::clone(&counted));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PROGRESS_EVERY);
                loop {
                    tick.tick().await;
                    let n = counted.load(Ordering::Relaxed).to_string();
                    if client.publish(progress.clone(), n.into()).await.is_err() {
                        break;
                    }
                }
            })
        };
        while let Some(msg) = sub.next().await {
            std::hint::black_box(&msg.payload);
            counted.fetch_add(1, Ordering::Relaxed);
        }
        reporter.abort();
    });
}

struct NatsServer(Child, u16);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nats() -> NatsServer {
    let port = free_port();
    let bin = [
        "/usr/sbin/nats-server",
        "/usr/local/bin/nats-server",
        "/usr/bin/nats-server",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("nats-server installed (make services)");
    let child = Command::new(bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    NatsServer(child, port)
}

/// (user+system CPU seconds, peak RSS bytes) of a process.
fn proc_usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of /proc/pid/stat (index 11, 12 after the comm).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0);
    (cpu, hwm * 1024)
}

fn scrape_received(port: u16) -> Option<u64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let line = body
        .lines()
        .find(|l| l.starts_with("data_manager_messages_received_total "))?;
    line.rsplit(' ')
        .next()?
        .parse::<f64>()
        .ok()
        .map(|v| v as u64)
}

struct Outcome {
    name: &'static str,
    rate: f64,
    mb_per_s: f64,
    cpu_pct: f64,
    peak_rss: u64,
    counted: u64,
}

/// Publishes `MESSAGES` from `pool` with the in-flight window, timing 10 %→90 % of progress.
async fn drive(
    name: &'static str,
    client: &async_nats::Client,
    subject: &str,
    pool: &[bytes::Bytes],
    progress: Arc<AtomicU64>,
    pid: u32,
) -> Outcome {
    let mean_size = pool.iter().map(|b| b.len()).sum::<usize>() as f64 / pool.len() as f64;
    let mut sent = 0u64;
    let (lo, hi) = (MESSAGES / 10, MESSAGES * 9 / 10);
    let mut mark_lo: Option<(Instant, u64, f64)> = None;
    let mut mark_hi: Option<(Instant, u64, f64)> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while progress.load(Ordering::Relaxed) < MESSAGES && Instant::now() < deadline {
        let done = progress.load(Ordering::Relaxed);
        if mark_lo.is_none() && done >= lo {
            mark_lo = Some((Instant::now(), done, proc_usage(pid).0));
        }
        if mark_hi.is_none() && done >= hi {
            mark_hi = Some((Instant::now(), done, proc_usage(pid).0));
        }
        if sent < MESSAGES && sent - done < WINDOW {
            let burst = (WINDOW - (sent - done)).min(MESSAGES - sent).min(1000);
            for _ in 0..burst {
                let body = pool[(sent % pool.len() as u64) as usize].clone();
                client
                    .publish(subject.to_owned(), body)
                    .await
                    .expect("publish");
                sent += 1;
            }
        } else {
            client.flush().await.expect("flush");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let (t0, n0, c0) = mark_lo.expect("reached 10 %");
    let (t1, n1, c1) = mark_hi.expect("reached 90 %");
    let secs = (t1 - t0).as_secs_f64();
    let rate = (n1 - n0) as f64 / secs;
    Outcome {
        name,
        rate,
        mb_per_s: rate * mean_size / 1e6,
        cpu_pct: (c1 - c0) / secs * 100.0,
        peak_rss: proc_usage(pid).1,
        counted: progress.load(Ordering::Relaxed),
    }
}

async fn run() {
    let server = start_nats();
    let url = format!("nats://127.0.0.1:{}", server.1);
    let mut mix = loadgen::Mix::new(42);
    let pool: Vec<bytes::Bytes> = mix
        .pool(POOL, NOW_MS)
        .into_iter()
        .map(bytes::Bytes::from)
        .collect();
    let client = async_nats::connect(&url).await.expect("publisher connect");
    let base = measure_baseline(&url, &client, &pool).await;
    let ours = measure_consumer(&url, &client, &pool).await;
    report(&base, &ours);
}

/// Baseline: the count-only subscriber in its own process, progress over NATS.
async fn measure_baseline(
    url: &str,
    client: &async_nats::Client,
    pool: &[bytes::Bytes],
) -> Outcome {
    let subject = "bench.baseline";
    let progress_subject = "bench.progress";
    let progress = Arc::new(AtomicU64::new(0));
    let mut progress_sub = client
        .subscribe(progress_subject)
        .await
        .expect("progress sub");
    let exe = std::env::current_exe().expect("own path");
    let mut baseline = Command::new(exe)
        .args(["--count-only", url, subject, progress_subject])
        .spawn()
        .expect("count-only subscriber");
    progress_sub.next().await.expect("subscriber ready");
    let p = Arc::clone(&progress);
    let reader = tokio::spawn(async move {
        while let Some(msg) = progress_sub.next().await {
            let n: u64 = String::from_utf8_lossy(&msg.payload).parse().unwrap_or(0);
            p.fetch_max(n, Ordering::Relaxed);
        }
    });
    let base = drive(
        "count-only async-nats subscriber",
        client,
        subject,
        pool,
        Arc::clone(&progress),
        baseline.id(),
    )
    .await;
    reader.abort();
    let _ = baseline.kill();
    let _ = baseline.wait();
    base
}

/// dm-consumer: progress from its own metrics, flushed every 10 ms for the benchmark.
async fn measure_consumer(
    url: &str,
    client: &async_nats::Client,
    pool: &[bytes::Bytes],
) -> Outcome {
    let metrics_port = free_port();
    let subject = "bench.consumer";
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_dm-consumer"))
        .env_clear()
        .env("NATS_URL", url)
        .env("NATS_CONSUMER_SUBJECT", subject)
        .env("NATS_SUBSCRIPTION_CAPACITY", CAPACITY)
        .env("METRICS_PORT", metrics_port.to_string())
        .env("METRICS_HOST", "127.0.0.1")
        .env("FLUSH_INTERVAL", "10ms")
        .env("LOG_LEVEL", "WARN")
        .stdout(Stdio::null())
        .spawn()
        .expect("dm-consumer");
    while scrape_received(metrics_port).is_none() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // subscription registered
    let progress = Arc::new(AtomicU64::new(0));
    let p = Arc::clone(&progress);
    let poller = tokio::task::spawn_blocking(move || {
        while p.load(Ordering::Relaxed) < MESSAGES {
            if let Some(n) = scrape_received(metrics_port) {
                p.fetch_max(n, Ordering::Relaxed);
            }
            std::thread::sleep(PROGRESS_EVERY / 2);
        }
    });
    let ours = drive(
        "dm-consumer (parse + count + metrics)",
        client,
        subject,
        pool,
        Arc::clone(&progress),
        consumer.id(),
    )
    .await;
    let _ = poller.await;
    let _ = Command::new("kill")
        .args(["-TERM", &consumer.id().to_string()])
        .status();
    let _ = consumer.wait();
    ours
}

/// Prints the table and the ratio; a run where either subscriber lost a message is invalid.
fn report(base: &Outcome, ours: &Outcome) {
    println!("\nEnd to end, {MESSAGES} messages of the realistic mix, window {WINDOW}:\n");
    println!("| subscriber | msgs/s (10→90 %) | MB/s | CPU % | peak RSS MiB | counted |");
    println!("|---|---|---|---|---|---|");
    for o in [base, ours] {
        println!(
            "| {} | {:.0} | {:.1} | {:.0} | {:.1} | {} |",
            o.name,
            o.rate,
            o.mb_per_s,
            o.cpu_pct,
            o.peak_rss as f64 / 1048576.0,
            o.counted
        );
    }
    println!(
        "\nratio dm-consumer / count-only: {:.2}",
        ours.rate / base.rate
    );
    assert_eq!(
        base.counted, MESSAGES,
        "baseline lost messages: invalid run"
    );
    assert_eq!(
        ours.counted, MESSAGES,
        "dm-consumer lost messages: invalid run"
    );
}
