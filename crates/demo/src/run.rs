//! `dm-demo run`: services up, database seeded, the three services and the load generator
//! started, the first audit and analytics results collected, everything stopped by PID.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::collect;
use crate::config::RunArgs;
use crate::launch::{self, Binaries, Wiring};
use crate::market::{self, Generated, Plan, TIMEFRAMES};
use crate::procs::{Exit, Proc, last_line};
use crate::seeding;
use crate::services::{self, Service};
use crate::summary::{Api, Endpoint, Summary};

/// The consumer's stats line prefix (kept from the current service).
const STATS_PREFIX: &str = "Message processing stats";
/// How long dm-consumer may take to count what was published after the publisher flushed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

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
pub(crate) struct Stack {
    services: Vec<Proc>,
    /// The dm-* processes, stopped before the servers.
    pub(crate) children: Vec<Proc>,
    /// dm-consumer's log, for its final stats line.
    pub(crate) consumer_log: Option<PathBuf>,
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
        let _ = seeding::drop_database(&mysql_uri(&args)).await;
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
    let cmd = launch::loadgen(
        &launch::bin_dir(args)?.join("dm-loadgen"),
        &nats_url(args),
        &subject(),
        args.rate,
    );
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

/// The local NATS server.
fn nats_url(args: &RunArgs) -> String {
    format!("nats://127.0.0.1:{}", args.nats_port)
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

/// The demo database on the local MariaDB.
fn mysql_uri(args: &RunArgs) -> String {
    format!(
        "mysql://root@127.0.0.1:{}/{}",
        args.mysql_port, args.database
    )
}

/// The run itself: services, seed, the services under test, load, then the first results.
async fn pipeline(
    args: &RunArgs,
    root: &Path,
    run_dir: &Path,
    stack: &mut Stack,
) -> Result<Summary, DemoError> {
    let bins = Binaries::find(args)?;
    let (services, mongo_url) = start_services(args, root, run_dir, stack).await?;
    let (plan, data) = seed(args).await?;
    let wiring = Wiring {
        nats_url: nats_url(args),
        mysql_uri: mysql_uri(args),
        mongo_url,
        pairs: plan.symbols.join(","),
        subject: subject(),
        events_subject: format!("demo.{}.data-manager.audit.events", std::process::id()),
    };
    let mut endpoints = Vec::new();
    let consumer = wiring.consumer(&bins.consumer);
    let consumer_port = launch::start(consumer, run_dir, stack, &mut endpoints).await?;
    stack.consumer_log = stack.children.last().map(|p| p.log.clone());
    let events = crate::events::count(&wiring.nats_url, &wiring.events_subject).await;
    let auditor = wiring.auditor(&bins.auditor, args);
    let auditor_port = launch::start(auditor, run_dir, stack, &mut endpoints).await?;
    let analytics = wiring.analytics(&bins.analytics, args);
    launch::start(analytics, run_dir, stack, &mut endpoints).await?;

    let loadgen = launch::load(&bins.loadgen, &wiring, args, run_dir).await?;
    step(format!("dm-loadgen published {}", loadgen.published));
    let consumer = collect::counted(consumer_port, loadgen.published, DRAIN_TIMEOUT).await;
    step(format!("dm-consumer counted {}", consumer.received));

    let client = mongodb::Client::with_uri_str(&wiring.mongo_url).await?;
    let db = client.database(&args.database);
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let audit = collect::audit(stack, auditor_port, &db, &plan.symbols, deadline).await?;
    let faults = collect::faults_found(&data.faults, &audit);
    step(format!(
        "audit cycle done: {} of {} injected faults reported",
        faults.iter().filter(|f| f.found).count(),
        faults.len()
    ));
    let analytics = collect::analytics(stack, &db, &plan.symbols, deadline).await?;
    step("analytics cycle done");

    let api = if bins.api.is_file() {
        let (page, datasets) =
            launch::api(&bins.api, &wiring, run_dir, stack, &mut endpoints).await?;
        Some(Api {
            page,
            datasets,
            events: events.get(),
            subject: wiring.events_subject.clone(),
        })
    } else {
        step("dm-api skipped: not built");
        None
    };

    Ok(Summary {
        run_dir: run_dir.display().to_string(),
        services,
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

/// NATS and MariaDB (reused or started) and our own SecantusDB; returns them and the URL of
/// the results database.
async fn start_services(
    args: &RunArgs,
    root: &Path,
    run_dir: &Path,
    stack: &mut Stack,
) -> Result<(Vec<Service>, String), DemoError> {
    let mut svc: Vec<Service> = Vec::new();
    let (s, p) = services::nats(args.nats_port, run_dir).await?;
    step(format!("nats: {} {}", s.url, origin(&s)));
    svc.push(s);
    stack.services.extend(p);
    let (s, p) = services::mariadb(args.mysql_port, run_dir).await?;
    step(format!("mariadb: {} {}", s.url, origin(&s)));
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
    Ok((svc, mongo_url))
}

fn origin(s: &Service) -> &'static str {
    if s.started_by_demo {
        "(started)"
    } else {
        "(already running, reused)"
    }
}

/// Generates the market data and recreates the demo database with it (klines, then trades);
/// the trades fault joins the injected ones.
async fn seed(args: &RunArgs) -> Result<(Plan, Generated), DemoError> {
    let plan = Plan {
        now: Utc::now(),
        symbols: args.data.symbols.clone(),
        days: args.data.days,
        fine_days: args.data.fine_days,
        seed: args.data.seed,
    };
    let mut data = market::generate(&plan);
    let mysql_uri = mysql_uri(args);
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
    Ok((plan, data))
}

/// The admin endpoint of a service on `port`.
pub(crate) fn endpoint(service: &str, port: u16) -> Endpoint {
    Endpoint {
        service: service.to_owned(),
        metrics: format!("http://127.0.0.1:{port}/metrics"),
    }
}
