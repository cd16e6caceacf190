//! The local services: NATS and MariaDB are reused when they already listen, else started here;
//! SecantusDB (the Mongo-compatible test server, installed by `deploy/local/ensure-mongo.sh`) is
//! always our own, in memory.
//! Whatever this module starts is stopped by its PID at the end, and nothing else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Command;

use crate::procs::Proc;

/// How long a server we started may take to listen (SecantusDB takes about 1 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A service the pipeline needs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Service {
    /// `nats`, `mariadb` or `mongo`.
    pub name: &'static str,
    /// Where it listens.
    pub url: String,
    /// Started by this demo (and stopped at the end), or found running.
    pub started_by_demo: bool,
}

/// Why a service is not available.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No binary to start.
    #[error("{0}")]
    Missing(String),
    /// Started but never listened.
    #[error("{name} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:?} (see {log})")]
    NoListen {
        /// The service.
        name: &'static str,
        /// Its port.
        port: u16,
        /// Its log.
        log: String,
    },
    /// Spawning failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// True when something accepts TCP connections on `127.0.0.1:port`.
pub async fn listening(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

async fn wait_listening(p: &mut Proc, name: &'static str, port: u16) -> Result<(), ServiceError> {
    let deadline = Instant::now() + START_TIMEOUT;
    while !listening(port).await {
        if Instant::now() > deadline || p.exited().is_some() {
            return Err(ServiceError::NoListen {
                name,
                port,
                log: p.log.display().to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// NATS with JetStream on `127.0.0.1:port`: reused if listening, else `nats-server` is started
/// with its store under `dir`.
///
/// # Errors
/// No `nats-server` binary (run `deploy/local/ensure-nats.sh --install-only`), or it never
/// listened.
pub async fn nats(port: u16, dir: &Path) -> Result<(Service, Option<Proc>), ServiceError> {
    let url = format!("nats://127.0.0.1:{port}");
    if listening(port).await {
        return Ok((service("nats", url, false), None));
    }
    let bin = find_binary("nats-server").ok_or_else(|| {
        ServiceError::Missing(
            "nats-server is not installed: run deploy/local/ensure-nats.sh --install-only".into(),
        )
    })?;
    let store = dir.join("nats-store");
    std::fs::create_dir_all(&store)?;
    let mut cmd = Command::new(bin);
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store);
    let mut p = Proc::spawn("nats-server", cmd, dir)?;
    wait_listening(&mut p, "nats", port).await?;
    Ok((service("nats", url, true), Some(p)))
}

/// MariaDB on `127.0.0.1:port`: reused if listening, else `mariadbd` is started with the
/// distribution's configuration (data directory `/var/lib/mysql`).
///
/// # Errors
/// No `mariadbd` (run `deploy/local/ensure-mariadb.sh --install-only`), or it never listened.
pub async fn mariadb(port: u16, dir: &Path) -> Result<(Service, Option<Proc>), ServiceError> {
    let url = format!("mysql://root@127.0.0.1:{port}");
    if listening(port).await {
        return Ok((service("mariadb", url, false), None));
    }
    let bin = find_binary("mariadbd").ok_or_else(|| {
        ServiceError::Missing(
            "mariadbd is not installed: run deploy/local/ensure-mariadb.sh --install-only".into(),
        )
    })?;
    // mariadbd refuses to run as root unless told which user to become.
    let _ = std::fs::create_dir_all("/run/mysqld");
    let _ = std::process::Command::new("chown")
        .args(["mysql:mysql", "/run/mysqld"])
        .status();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--user=mysql",
        "--bind-address=127.0.0.1",
        &format!("--port={port}"),
    ]);
    let mut p = Proc::spawn("mariadbd", cmd, dir)?;
    wait_listening(&mut p, "mariadb", port).await?;
    fix_root_login(port).await;
    Ok((service("mariadb", url, true), Some(p)))
}

/// Debian's fresh MariaDB lets root in through the unix socket only (ERROR 1698 over TCP), so
/// root is given an empty password as well, as `deploy/local/ensure-mariadb.sh` does. Needs the
/// `mariadb` client and the OS root user, and is skipped when TCP login already works.
async fn fix_root_login(port: u16) {
    let tcp_login = || {
        Command::new("mariadb")
            .args(["--protocol=TCP", "-h", "127.0.0.1", "-P", &port.to_string()])
            .args(["-u", "root", "-e", "SELECT 1"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
    };
    if tcp_login().await.is_ok_and(|s| s.success()) {
        return;
    }
    let _ = Command::new("mariadb")
        .args(["-u", "root", "-e"])
        .arg(
            "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password \
             USING PASSWORD('') OR unix_socket;",
        )
        .status()
        .await;
}

/// Our own SecantusDB on a free port, in memory, started from the project's virtualenv.
///
/// # Errors
/// The virtualenv is missing (run `deploy/local/ensure-mongo.sh`), or it never listened.
pub async fn mongo(bin: &Path, dir: &Path) -> Result<(Service, Proc), ServiceError> {
    if !bin.is_file() {
        return Err(ServiceError::Missing(format!(
            "{} is missing: run deploy/local/ensure-mongo.sh",
            bin.display()
        )));
    }
    let port = testkit::free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--storage-path", ":memory:", "--log-level", "WARNING"]);
    let mut p = Proc::spawn("secantusd", cmd, dir)?;
    wait_listening(&mut p, "mongo", port).await?;
    Ok((
        service("mongo", format!("mongodb://127.0.0.1:{port}"), true),
        p,
    ))
}

fn service(name: &'static str, url: String, started_by_demo: bool) -> Service {
    Service {
        name,
        url,
        started_by_demo,
    }
}
