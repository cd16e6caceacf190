//! Starting the services under test: dm-consumer, dm-auditor and dm-analytics (each waited for
//! until ready), the load generator, and dm-api on the results.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::config::RunArgs;
use crate::market::TIMEFRAMES;
use crate::probe;
use crate::procs::Proc;
use crate::run::{DemoError, Stack, step};
use crate::summary::{Endpoint, Loadgen};

/// A service's admin server must answer within this after start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The binaries the demo runs, from `--bin-dir` or next to dm-demo.
pub(crate) struct Binaries {
    pub(crate) consumer: PathBuf,
    pub(crate) loadgen: PathBuf,
    pub(crate) auditor: PathBuf,
    pub(crate) analytics: PathBuf,
    /// Optional: dm-api is skipped when it is not built.
    pub(crate) api: PathBuf,
}

impl Binaries {
    /// Every required binary, or the first one missing.
    pub(crate) fn find(args: &RunArgs) -> Result<Binaries, DemoError> {
        let dir = bin_dir(args)?;
        Ok(Binaries {
            consumer: binary(&dir, "dm-consumer")?,
            loadgen: binary(&dir, "dm-loadgen")?,
            auditor: binary(&dir, "dm-auditor")?,
            analytics: binary(&dir, "dm-analytics")?,
            api: dir.join("dm-api"),
        })
    }
}

/// `--bin-dir`, else the directory dm-demo runs from.
pub(crate) fn bin_dir(args: &RunArgs) -> Result<PathBuf, DemoError> {
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

/// Where the services under test find NATS, the databases and each other.
pub(crate) struct Wiring {
    pub(crate) nats_url: String,
    pub(crate) mysql_uri: String,
    /// The results database.
    pub(crate) mongo_url: String,
    /// The seeded symbols, comma-separated.
    pub(crate) pairs: String,
    /// The market-data subject the load goes to.
    pub(crate) subject: String,
    /// The subject of the auditor's data-quality events.
    pub(crate) events_subject: String,
}

/// A service under test as the demo launches it: described once by its [`Wiring`] method,
/// started by [`start`].
pub(crate) struct Service {
    /// Its binary's name, which also names its log file and its endpoint in the summary.
    name: &'static str,
    /// The command, with its arguments and environment.
    cmd: Command,
    /// The port of its admin server (or of its API, for dm-api).
    port: u16,
    /// How its progress line names it: the binary, and `run` for the schedulers.
    label: String,
    /// What its progress line says after `<label> ready (pid <pid>`.
    after_pid: String,
}

impl Wiring {
    /// dm-consumer on the demo subject.
    pub(crate) fn consumer(&self, bin: &Path) -> Service {
        let port = testkit::free_port();
        let mut cmd = Command::new(bin);
        admin_server(&mut cmd, port)
            .env("NATS_URL", &self.nats_url)
            .env("NATS_CONSUMER_SUBJECT", &self.subject)
            .env("STATS_INTERVAL", "30s");
        Service {
            name: "dm-consumer",
            cmd,
            port,
            label: "dm-consumer".into(),
            after_pid: format!(", http://127.0.0.1:{port}/metrics)"),
        }
    }

    /// `dm-auditor run` on every timeframe, publishing its events.
    pub(crate) fn auditor(&self, bin: &Path, args: &RunArgs) -> Service {
        let port = testkit::free_port();
        let mut cmd = self.scheduler(bin, port);
        cmd.env("NATS_URL", &self.nats_url)
            .env("AUDIT_EVENTS_SUBJECT", &self.events_subject)
            .env("AUDIT_TIMEFRAMES", TIMEFRAMES.join(","))
            .env("AUDIT_INTERVAL", args.audit_interval.to_string())
            // 48 h, so that yesterday's 1d candle lies in the window (24 h would audit `1d` as
            // `no_data` for most of the day); the 5m–30m history covers it (`--fine-days` ≥ 2).
            .env("AUDIT_WINDOW", "172800")
            .env("PROBE_INTERVAL", "2s");
        Service {
            name: "dm-auditor",
            cmd,
            port,
            label: "dm-auditor run".into(),
            after_pid: format!(
                ", LEADER_ELECTION=disabled, AUDIT_INTERVAL={} s)",
                args.audit_interval
            ),
        }
    }

    /// `dm-analytics run` on `1h` and `1d`.
    pub(crate) fn analytics(&self, bin: &Path, args: &RunArgs) -> Service {
        let port = testkit::free_port();
        let mut cmd = self.scheduler(bin, port);
        cmd.env("ANALYTICS_TIMEFRAMES", "1h,1d")
            .env("ANALYTICS_INTERVAL", args.analytics_interval.to_string());
        Service {
            name: "dm-analytics",
            cmd,
            port,
            label: "dm-analytics run".into(),
            after_pid: format!(", ANALYTICS_INTERVAL={} s)", args.analytics_interval),
        }
    }

    /// dm-api on the results database.
    pub(crate) fn api(&self, bin: &Path) -> Service {
        let port = testkit::free_port();
        let mut cmd = Command::new(bin);
        cmd.env("MONGODB_URL", &self.mongo_url)
            .env("API_HOST", "127.0.0.1")
            .env("API_PORT", port.to_string())
            .env("PROBE_INTERVAL", "2s")
            .env("LOG_FORMAT", "text");
        Service {
            name: "dm-api",
            cmd,
            port,
            label: "dm-api".into(),
            after_pid: format!("): status page {}", page(port)),
        }
    }

    /// `<bin> run` with what both schedulers share: the databases, the symbols, no leader
    /// election, the admin server on `port`, text logs.
    fn scheduler(&self, bin: &Path, port: u16) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .env("MYSQL_URI", &self.mysql_uri)
            .env("MONGODB_URL", &self.mongo_url)
            .env("SUPPORTED_PAIRS", &self.pairs)
            .env("LEADER_ELECTION", "disabled");
        admin_server(&mut cmd, port);
        cmd
    }
}

/// The admin server on `127.0.0.1:port` and text logs, as dm-consumer and the schedulers
/// read them.
fn admin_server(cmd: &mut Command, port: u16) -> &mut Command {
    cmd.env("METRICS_HOST", "127.0.0.1")
        .env("METRICS_PORT", port.to_string())
        .env("LOG_FORMAT", "text")
}

/// dm-api's status page on `port`.
fn page(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// dm-loadgen publishing `rate` messages a second to dm-consumer's subject on `nats_url`.
pub(crate) fn loadgen(bin: &Path, nats_url: &str, subject: &str, rate: u64) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--rate", &rate.to_string()])
        .env("NATS_URL", nats_url)
        .env("NATS_CONSUMER_SUBJECT", subject);
    cmd
}

/// Spawns `service`, waits until its server is ready, keeps it on the stack (stopped at the
/// end) and lists its endpoint; returns its port. A child that never gets ready is killed.
pub(crate) async fn start(
    service: Service,
    run_dir: &Path,
    stack: &mut Stack,
    endpoints: &mut Vec<Endpoint>,
) -> Result<u16, DemoError> {
    let Service {
        name,
        cmd,
        port,
        label,
        after_pid,
    } = service;
    let mut p = Proc::spawn(name, cmd, run_dir)?;
    wait_ready(&mut p, port).await?;
    let pid = p.pid().unwrap_or_default();
    stack.children.push(p);
    step(format!("{label} ready (pid {pid}{after_pid}"));
    endpoints.push(crate::run::endpoint(name, port));
    Ok(port)
}

/// Runs dm-loadgen for `--seconds` at `--rate` to dm-consumer and reads the JSON it prints.
pub(crate) async fn load(
    bin: &Path,
    wiring: &Wiring,
    args: &RunArgs,
    run_dir: &Path,
) -> Result<Loadgen, DemoError> {
    step(format!(
        "dm-loadgen: publishing {} msg/s for {} s to dm-consumer",
        args.rate, args.seconds
    ));
    let log = run_dir.join("dm-loadgen.log");
    let out = loadgen(bin, &wiring.nats_url, &wiring.subject, args.rate)
        .args(["--count", &(args.rate * args.seconds).to_string()])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .output()
        .await?;
    if !out.status.success() {
        return Err(DemoError::Child(format!(
            "dm-loadgen exited with {} (see {})",
            out.status,
            log.display()
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| DemoError::Child(format!("dm-loadgen printed no summary: {e}")))
}

/// Starts dm-api on the results and waits until it lists datasets: (page URL, datasets).
pub(crate) async fn api(
    bin: &Path,
    wiring: &Wiring,
    run_dir: &Path,
    stack: &mut Stack,
    endpoints: &mut Vec<Endpoint>,
) -> Result<(String, usize), DemoError> {
    let port = start(wiring.api(bin), run_dir, stack, endpoints).await?;
    let datasets = probe::get(port, "/v1/datasets")
        .await
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|v| v["datasets"].as_array().map(Vec::len))
        .unwrap_or(0);
    Ok((page(port), datasets))
}

/// Polls the readiness endpoint until it answers 200; fails as soon as the child exits, or
/// after [`READY_TIMEOUT`].
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
