//! Child processes the demo started: spawned with their output in a log file, stopped by PID
//! with SIGTERM, and their exit status kept for the summary.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};

/// How long a child may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(25);

/// A running child the demo owns.
#[derive(Debug)]
pub struct Proc {
    /// A short name (`dm-consumer`, `nats-server`, …).
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Child,
    signal: &'static str,
}

/// How a child ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exit {
    /// The child's name.
    pub service: String,
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// It had to be killed after the stop grace period.
    pub killed: bool,
    /// Its log file.
    pub log: String,
}

impl Exit {
    /// Exited by itself with code 0.
    pub fn clean(&self) -> bool {
        self.code == Some(0) && !self.killed
    }
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout/stderr appended to `<dir>/<name>.log`.
    ///
    /// # Errors
    /// The log file cannot be created or the program cannot be started.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> std::io::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A safety net if the demo itself fails half-way: never leave a child behind.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("starting {name}: {e}")))?;
        Ok(Proc {
            name: name.to_owned(),
            log,
            child,
            signal: "-TERM",
        })
    }

    /// Stop with SIGINT instead of SIGTERM (dm-loadgen stops on Ctrl-C only).
    #[must_use]
    pub fn stopped_by_sigint(mut self) -> Proc {
        self.signal = "-INT";
        self
    }

    /// The child's PID (`None` once it has been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `Some(status)` if the child has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM (or SIGINT, see [`Proc::stopped_by_sigint`]) to this PID, waits up to
    /// 25 s, then kills it.
    pub async fn stop(mut self) -> Exit {
        if let Some(pid) = self.child.id() {
            // `kill` keeps this crate free of `unsafe` (no libc::kill).
            let _ = Command::new("kill")
                .args([self.signal, &pid.to_string()])
                .status()
                .await;
        }
        let (status, killed) = match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(s) => (s.ok(), false),
            Err(_) => {
                let _ = self.child.kill().await;
                (None, true)
            }
        };
        Exit {
            service: self.name,
            code: status.and_then(|s| s.code()),
            killed,
            log: self.log.display().to_string(),
        }
    }

    /// The last line of the log containing `needle`.
    pub fn last_log_line(&self, needle: &str) -> Option<String> {
        last_line(&self.log, needle)
    }
}

/// The last line of `path` containing `needle`.
pub fn last_line(path: &Path, needle: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .rev()
        .find(|l| l.contains(needle))
        .map(str::to_owned)
}
