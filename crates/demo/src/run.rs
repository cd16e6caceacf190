//! `dm-demo run`: services up, database seeded, the three services and the load generator
//! started, the first audit and analytics results collected, everything stopped by PID.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::process::Command;

use crate::config::RunArgs;
use crate::market::{self, Plan, TIMEFRAMES};
use crate::probe;
use crate::procs::{Exit, Proc, last_line};
use crate::results;
use crate::seeding;
use crate::services::{self, Service};
use crate::summary::{Analytics, Api, Consumer, Endpoint, FaultCheck, Loadgen, Summary};

/// The consumer's stats line prefix (kept from the current service).
const STATS_PREFIX: &str = "Message processing stats";
/// How long dm-consumer may take to count what was published after the publisher flushed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// A service's admin server must answer within this after start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the demo stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A binary the demo runs is missing.
    #[error("{0} not found: build it first (cargo build --bins)")]
    MissingBinary(PathBuf),
    /// A service could not be made available.
    #[error(transparent)]
    Service(#[from] services::ServiceError),
    /// Seeding MySQL failed.
    #[error("seeding MySQL: {0}")]
    Seed(#[from] seeding::SeedError),
    /// MongoDB refused a query.
    #[error("reading results from MongoDB: {0}")]
    Mongo(#[from] mongodb::error::Error),
    /// A child failed to start or exited early.
    #[error("{0}")]
    Child(String),
    /// Something did not happen in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// Local I/O (the run directory, spawning).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A progress line on stderr: what the demo is doing now.
pub fn step(msg: impl AsRef<str>) {
    eprintln!("==> {}", msg.as_ref());
}

/// Everything the demo started, in start order.
#[derive(Default)]
struct Stack {
    services: Vec<Proc>,
    children: Vec<Proc>,
    consumer_log: Option<PathBuf>,
}

impl Stack {
    /// SIGTERM to each dm-* child, newest first; their exits.
    async fn stop_children(&mut self) -> Vec<Exit> {
        let mut exits = Vec::new();
        while let Some(p) = self.children.pop() {
            step(format!(
                "stopping {} (pid {})",
                p.name,
                p.pid().unwrap_or_default()
            ));
            exits.push(p.stop().await);
        }
        exits.reverse();
        exits
    }

    /// SIGTERM to each server the demo started, newest first.
    async fn stop_services(&mut self) {
        while let Some(p) = self.services.pop() {
            step(format!(
                "stopping {} (pid {}, started by the demo)",
                p.name,
                p.pid().unwrap_or_default()
            ));
            let _ = p.stop().await;
        }
    }
}

/// The first of Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Runs the demo and returns its summary (printed by the caller). Whatever it started is
/// stopped before it returns, also on error or Ctrl-C.
///
/// # Errors
/// A missing binary or service, a failed seed, a child that died, or a timeout.
pub async fn run(args: RunArgs) -> Result<Summary, DemoError> {
    let root = repo_root();
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        root.join("target/demo").join(format!(
            "{}-{}",
            Utc::now().format("%Y%m%d-%H%M%S"),
            std::process::id()
        ))
    });
    std::fs::create_dir_all(&run_dir)?;
    step(format!("logs go to {}", run_dir.display()));
    let mut stack = Stack::default();
    let outcome = tokio::select! {
        r = pipeline(&args, &root, &run_dir, &mut stack) => r,
        () = interrupted() => Err(DemoError::Interrupted),
    };
    let outcome = match outcome {
        Ok(summary) if args.keep => {
            if !args.json {
                print_summary(&summary, false);
            }
            keep_running(&args, &run_dir, &mut stack, summary).await
        }
        other => other,
    };
    let exits = stack.stop_children().await;
    let stats_line = stack
        .consumer_log
        .as_deref()
        .and_then(|l| last_line(l, STATS_PREFIX));
    if args.drop_database {
        let url = format!(
            "mysql://root@127.0.0.1:{}/{}",
            args.mysql_port, args.database
        );
        let _ = seeding::drop_database(&url).await;
    }
    stack.stop_services().await;
    let mut summary = outcome?;
    summary.exits = exits;
    summary.consumer.stats_line = stats_line.or(summary.consumer.stats_line);
    Ok(summary)
}

/// Prints the summary: JSON on stdout, or the human text.
pub fn print_summary(summary: &Summary, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(summary).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        );
    } else {
        print!("{}", summary.render());
    }
}

async fn keep_running(
    args: &RunArgs,
    run_dir: &Path,
    stack: &mut Stack,
    summary: Summary,
) -> Result<Summary, DemoError> {
    let bin_dir = bin_dir(args)?;
    let mut cmd = Command::new(bin_dir.join("dm-loadgen"));
    cmd.args(["--rate", &args.rate.to_string()])
        .env("NATS_URL", format!("nats://127.0.0.1:{}", args.nats_port))
        .env("NATS_CONSUMER_SUBJECT", subject());
    stack
        .children
        .push(Proc::spawn("dm-loadgen", cmd, run_dir)?.stopped_by_sigint());
    step(format!(
        "running until Ctrl-C: publishing {} msg/s, audits every {} s, analytics every {} s \
         (try: curl -s {}){}",
        args.rate,
        args.audit_interval,
        args.analytics_interval,
        summary
            .endpoints
            .first()
            .map_or(String::new(), |e| e.metrics.clone()),
        summary
            .api
            .as_ref()
            .map_or(String::new(), |a| format!("; status page {}", a.page))
    ));
    interrupted().await;
    eprintln!();
    Ok(summary)
}

fn subject() -> String {
    format!("demo.{}.binance.futures.websocket.data", std::process::id())
}

fn repo_root() -> PathBuf {
    let start = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .into_iter()
        .chain(std::env::current_dir().ok());
    start
        .flat_map(|p| p.ancestors().map(Path::to_path_buf).collect::<Vec<_>>())
        .find(|p| p.join("Cargo.lock").is_file())
        .unwrap_or_else(|| PathBuf::from("."))
}

fn bin_dir(args: &RunArgs) -> Result<PathBuf, DemoError> {
    match &args.bin_dir {
        Some(d) => Ok(d.clone()),
        None => Ok(std::env::current_exe()?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()),
    }
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf, DemoError> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(DemoError::MissingBinary(p))
    }
}

/// dm-analytics counts as available when `dm-analytics run --help` prints a usage: until its
/// issue lands the binary is an empty `main` that prints nothing.
async fn analytics_available(bin: &Path) -> Result<(), String> {
    let out = Command::new(bin)
        .args(["run", "--help"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("Usage") {
        Ok(())
    } else {
        Err(format!(
            "`{} run --help` prints no usage: dm-analytics is still a stub",
            bin.display()
        ))
    }
}

async fn wait_ready(p: &mut Proc, port: u16) -> Result<(), DemoError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some((200, _)) = probe::get(port, "/health/readiness").await {
            return Ok(());
        }
        if let Some(status) = p.exited() {
            return Err(DemoError::Child(format!(
                "{} exited with {status} (see {})",
                p.name,
                p.log.display()
            )));
        }
        if Instant::now() > deadline {
            return Err(DemoError::Timeout(format!(
                "{} not ready on port {port} (see {})",
                p.name,
                p.log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

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

#[allow(clippy::too_many_lines)] // one straight sequence of steps, read top to bottom
async fn pipeline(
    args: &RunArgs,
    root: &Path,
    run_dir: &Path,
    stack: &mut Stack,
) -> Result<Summary, DemoError> {
    let bins = bin_dir(args)?;
    let consumer_bin = binary(&bins, "dm-consumer")?;
    let loadgen_bin = binary(&bins, "dm-loadgen")?;
    let auditor_bin = binary(&bins, "dm-auditor")?;
    let analytics_bin = bins.join("dm-analytics");
    let analytics_check = analytics_available(&analytics_bin).await;
    let api_bin = bins.join("dm-api");

    // 1. Services.
    let mut svc: Vec<Service> = Vec::new();
    let (s, p) = services::nats(args.nats_port, run_dir).await?;
    step(format!(
        "nats: {} {}",
        s.url,
        if s.started_by_demo {
            "(started)"
        } else {
            "(already running, reused)"
        }
    ));
    svc.push(s);
    stack.services.extend(p);
    let (s, p) = services::mariadb(args.mysql_port, run_dir).await?;
    step(format!(
        "mariadb: {} {}",
        s.url,
        if s.started_by_demo {
            "(started)"
        } else {
            "(already running, reused)"
        }
    ));
    svc.push(s);
    stack.services.extend(p);
    let mongo_bin = args
        .mongo_bin
        .clone()
        .unwrap_or_else(|| root.join(".venv-mongo/bin/secantusd-py"));
    let (s, p) = services::mongo(&mongo_bin, run_dir).await?;
    step(format!(
        "mongo: SecantusDB in memory at {} (started)",
        s.url
    ));
    let mongo_url = format!("{}/{}", s.url, args.database);
    svc.push(s);
    stack.services.push(p);

    // 2. Seed.
    let plan = Plan {
        now: Utc::now(),
        symbols: args.data.symbols.clone(),
        days: args.data.days,
        fine_days: args.data.fine_days,
        seed: args.data.seed,
    };
    let mut data = market::generate(&plan);
    let mysql_uri = format!(
        "mysql://root@127.0.0.1:{}/{}",
        args.mysql_port, args.database
    );
    step(format!(
        "seeding {} klines ({} symbols × {}; {} d of 1h/1d, {} d of 5m/15m/30m) into {}",
        data.row_count(),
        plan.symbols.len(),
        TIMEFRAMES.join(","),
        plan.days,
        plan.fine_days,
        mysql_uri
    ));
    let started = Instant::now();
    let pool = seeding::recreate(&mysql_uri, &data).await?;
    let trades =
        crate::trades::seed(&pool, &data)
            .await
            .map_err(|source| seeding::SeedError::Sql {
                what: "inserting trades",
                source,
            })?;
    pool.close().await;
    if let Some(t) = &trades {
        step(format!(
            "seeded trades of {}: {} generated, {} kept by the server",
            t.fault.symbol, t.generated, t.kept
        ));
        data.faults.push(t.fault.clone());
    }
    step(format!(
        "seeded in {:.1} s; injected faults: {}",
        started.elapsed().as_secs_f64(),
        data.faults
            .iter()
            .map(|f| format!("{} {} {}", f.kind, f.symbol, f.timeframe))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // 3. The three services.
    let nats_url = format!("nats://127.0.0.1:{}", args.nats_port);
    let pairs = plan.symbols.join(",");
    let mut endpoints = Vec::new();
    let port = services::free_port()?;
    let mut cmd = Command::new(&consumer_bin);
    cmd.env("NATS_URL", &nats_url)
        .env("NATS_CONSUMER_SUBJECT", subject())
        .env("METRICS_HOST", "127.0.0.1")
        .env("METRICS_PORT", port.to_string())
        .env("LOG_FORMAT", "text")
        .env("STATS_INTERVAL", "30s");
    let mut p = Proc::spawn("dm-consumer", cmd, run_dir)?;
    wait_ready(&mut p, port).await?;
    step(format!(
        "dm-consumer ready (pid {}, http://127.0.0.1:{port}/metrics)",
        p.pid().unwrap_or_default()
    ));
    stack.consumer_log = Some(p.log.clone());
    stack.children.push(p);
    let consumer_port = port;
    endpoints.push(endpoint("dm-consumer", port));

    let scheduler_env = |cmd: &mut Command, port: u16| {
        cmd.arg("run")
            .env("MYSQL_URI", &mysql_uri)
            .env("MONGODB_URL", &mongo_url)
            .env("SUPPORTED_PAIRS", &pairs)
            .env("LEADER_ELECTION", "disabled")
            .env("METRICS_HOST", "127.0.0.1")
            .env("METRICS_PORT", port.to_string())
            .env("LOG_FORMAT", "text");
    };
    let events_subject = format!("demo.{}.data-manager.audit.events", std::process::id());
    let events = crate::events::count(&nats_url, &events_subject).await;
    let auditor_port = services::free_port()?;
    let mut cmd = Command::new(&auditor_bin);
    scheduler_env(&mut cmd, auditor_port);
    cmd.env("NATS_URL", &nats_url)
        .env("AUDIT_EVENTS_SUBJECT", &events_subject);
    cmd.env("AUDIT_TIMEFRAMES", TIMEFRAMES.join(","))
        .env("AUDIT_INTERVAL", args.audit_interval.to_string())
        // 48 h, so that yesterday's 1d candle lies in the window (24 h would audit `1d` as
        // `no_data` for most of the day); the 5m–30m history covers it (`--fine-days` ≥ 2).
        .env("AUDIT_WINDOW", "172800")
        .env("PROBE_INTERVAL", "2s");
    let mut p = Proc::spawn("dm-auditor", cmd, run_dir)?;
    wait_ready(&mut p, auditor_port).await?;
    step(format!(
        "dm-auditor run ready (pid {}, LEADER_ELECTION=disabled, AUDIT_INTERVAL={} s)",
        p.pid().unwrap_or_default(),
        args.audit_interval
    ));
    stack.children.push(p);
    endpoints.push(endpoint("dm-auditor", auditor_port));

    let analytics_on = match &analytics_check {
        Ok(()) => {
            let port = services::free_port()?;
            let mut cmd = Command::new(&analytics_bin);
            scheduler_env(&mut cmd, port);
            cmd.env("ANALYTICS_TIMEFRAMES", "1h,1d")
                .env("ANALYTICS_INTERVAL", args.analytics_interval.to_string());
            let mut p = Proc::spawn("dm-analytics", cmd, run_dir)?;
            wait_ready(&mut p, port).await?;
            step(format!(
                "dm-analytics run ready (pid {}, ANALYTICS_INTERVAL={} s)",
                p.pid().unwrap_or_default(),
                args.analytics_interval
            ));
            stack.children.push(p);
            endpoints.push(endpoint("dm-analytics", port));
            true
        }
        Err(why) => {
            step(format!("dm-analytics skipped: {why}"));
            false
        }
    };

    // 4. Load.
    step(format!(
        "dm-loadgen: publishing {} msg/s for {} s to dm-consumer",
        args.rate, args.seconds
    ));
    let out = Command::new(&loadgen_bin)
        .args(["--rate", &args.rate.to_string()])
        .args(["--count", &(args.rate * args.seconds).to_string()])
        .env("NATS_URL", &nats_url)
        .env("NATS_CONSUMER_SUBJECT", subject())
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(run_dir.join("dm-loadgen.log"))?)
        .output()
        .await?;
    if !out.status.success() {
        return Err(DemoError::Child(format!(
            "dm-loadgen exited with {} (see {})",
            out.status,
            run_dir.join("dm-loadgen.log").display()
        )));
    }
    let loadgen: Loadgen = serde_json::from_slice(&out.stdout)
        .map_err(|e| DemoError::Child(format!("dm-loadgen printed no summary: {e}")))?;
    step(format!("dm-loadgen published {}", loadgen.published));

    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let consumer = loop {
        let c = consumer_counts(consumer_port).await;
        if c.received >= loadgen.published || Instant::now() > deadline {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    step(format!("dm-consumer counted {}", consumer.received));

    // 5. The first audit and analytics results.
    let client = mongodb::Client::with_uri_str(&mongo_url).await?;
    let db = client.database(&args.database);
    // The trades datasets (one per symbol) are written after the klines ones.
    let datasets = plan.symbols.len() * (TIMEFRAMES.len() + 1);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
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
        if done.is_some_and(|t| t > 0.0) && results::audited_datasets(&db).await? >= datasets {
            break;
        }
        if Instant::now() > deadline {
            return Err(DemoError::Timeout("no completed audit cycle".into()));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let audited: Vec<&str> = TIMEFRAMES.iter().copied().chain(["trades"]).collect();
    let audit = results::audit(&db, &plan.symbols, &audited).await?;
    let faults: Vec<FaultCheck> = data
        .faults
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
        .collect();
    step(format!(
        "audit cycle done: {} of {} injected faults reported",
        faults.iter().filter(|f| f.found).count(),
        faults.len()
    ));

    let mut analytics = Analytics {
        available: analytics_on,
        note: analytics_check.err(),
        ..Analytics::default()
    };
    if analytics_on {
        step("waiting for the first analytics cycle (documents for every symbol)");
        let mut previous = BTreeMap::new();
        loop {
            check_alive(stack)?;
            let counts = results::analytics_counts(&db).await?;
            let every = plan
                .symbols
                .iter()
                .all(|s| counts.values().any(|m| m.get(s).is_some_and(|n| *n > 0)));
            // Settled: two polls a second apart see the same documents.
            if every && counts == previous {
                analytics.documents = counts;
                break;
            }
            if Instant::now() > deadline {
                analytics.documents = counts;
                break;
            }
            previous = counts;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for s in &plan.symbols {
            let values = results::analytics_values(&db, s).await?;
            analytics.values.insert(s.clone(), values);
        }
        step("analytics cycle done");
    }

    let api = if api_bin.is_file() {
        Some(start_api(&api_bin, &mongo_url, run_dir, stack, &mut endpoints).await?)
    } else {
        step("dm-api skipped: not built");
        None
    }
    .map(|(page, datasets)| Api {
        page,
        datasets,
        events: events.get(),
        subject: events_subject.clone(),
    });

    Ok(Summary {
        run_dir: run_dir.display().to_string(),
        services: svc,
        database: args.database.clone(),
        seeded_rows: data.row_count(),
        symbols: plan.symbols.clone(),
        faults,
        loadgen,
        consumer,
        audit,
        analytics,
        endpoints,
        exits: Vec::new(),
        api,
    })
}

/// Starts dm-api on the results and waits until it lists datasets: (page URL, datasets).
async fn start_api(
    bin: &Path,
    mongo_url: &str,
    run_dir: &Path,
    stack: &mut Stack,
    endpoints: &mut Vec<Endpoint>,
) -> Result<(String, usize), DemoError> {
    let port = services::free_port()?;
    let mut cmd = Command::new(bin);
    cmd.env("MONGODB_URL", mongo_url)
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", port.to_string())
        .env("PROBE_INTERVAL", "2s")
        .env("LOG_FORMAT", "text");
    let mut p = Proc::spawn("dm-api", cmd, run_dir)?;
    wait_ready(&mut p, port).await?;
    let page = format!("http://127.0.0.1:{port}/");
    step(format!(
        "dm-api ready (pid {}): status page {page}",
        p.pid().unwrap_or_default()
    ));
    stack.children.push(p);
    endpoints.push(endpoint("dm-api", port));
    let datasets = probe::get(port, "/v1/datasets")
        .await
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v["datasets"].as_array().map(Vec::len))
        .unwrap_or(0);
    Ok((page, datasets))
}

fn same_instant(text: Option<&str>, at: chrono::DateTime<Utc>) -> bool {
    text.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t == at)
}

fn endpoint(service: &str, port: u16) -> Endpoint {
    Endpoint {
        service: service.to_owned(),
        metrics: format!("http://127.0.0.1:{port}/metrics"),
    }
}

async fn consumer_counts(port: u16) -> Consumer {
    let Some((_, m)) = probe::get(port, "/metrics").await else {
        return Consumer::default();
    };
    let n = |x: Option<f64>| x.unwrap_or(0.0) as u64;
    let mut by_kind = BTreeMap::new();
    for kind in ["trade", "depth", "ticker", "kline", "markPrice"] {
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
