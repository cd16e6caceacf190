//! Test harness for dm-consumer: real processes, a real nats-server, HTTP over real sockets.
#![allow(
    dead_code,
    reason = "each test binary includes this module and uses only part of it"
)]

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use testkit::{eventually, free_port, http_get, parse_metrics};

/// The shared NATS server (pre-started on the dev machines), unless TEST_NATS_URL says otherwise.
pub fn shared_nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A subject nobody else uses.
pub fn unique_subject(test: &str) -> String {
    format!(
        "test.{}.{test}.binance.futures.websocket.data",
        uuid::Uuid::new_v4().simple()
    )
}

/// A nats-server process this test owns (so it can kill and restart it).
pub struct NatsServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

fn nats_server_binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/bin"])
    {
        let p = PathBuf::from(dir).join("nats-server");
        if p.is_file() {
            return p;
        }
    }
    panic!("nats-server not found on PATH or in /usr/sbin (.ci/run installs it)");
}

impl NatsServer {
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// A server with extra command-line arguments (e.g. `--user u --pass p`, `--auth TOKEN`).
    pub fn start_with(args: &[&str]) -> NatsServer {
        let mut s = NatsServer {
            port: free_port(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            child: None,
        };
        s.restart();
        s
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the extra arguments used by the next [`NatsServer::restart`].
    pub fn set_args(&mut self, args: &[&str]) {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running dm-consumer process.
pub struct Consumer {
    pub metrics_port: u16,
    child: Child,
    stderr_path: PathBuf,
}

impl Consumer {
    /// Starts dm-consumer with `env` on top of test defaults (text logs, 1 s stats interval).
    pub fn start(nats_url: &str, subject: &str, env: &[(&str, &str)]) -> Consumer {
        let metrics_port = free_port();
        let stderr_path =
            std::env::temp_dir().join(format!("dm-consumer-{}.log", uuid::Uuid::new_v4().simple()));
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dm-consumer"));
        cmd.env_clear()
            .env("NATS_URL", nats_url)
            .env("NATS_CONSUMER_SUBJECT", subject)
            .env("METRICS_PORT", metrics_port.to_string())
            .env("METRICS_HOST", "127.0.0.1")
            .env("LOG_FORMAT", "text")
            .env("LOG_LEVEL", "INFO")
            .env("STATS_INTERVAL", "1s")
            .env("NATS_RECONNECT_TIME_WAIT", "300ms")
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("starting dm-consumer");
        Consumer {
            metrics_port,
            child,
            stderr_path,
        }
    }

    /// GET a path on the admin port: (status, body), or `None` if the server is not up.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics_port, path)
    }

    /// The scraped metrics as `series -> value`, where a series is `name{labels}` as rendered.
    pub fn metrics(&self) -> Option<HashMap<String, f64>> {
        let (status, body) = self.get("/metrics")?;
        (status == 200).then(|| parse_metrics(&body))
    }

    /// Waits until the readiness probe returns `status`; fails with the last answer and the
    /// consumer's log when it does not within `within`.
    pub async fn wait_readiness(&self, status: u16, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let last = self.get("/health/readiness");
            if last.as_ref().is_some_and(|(s, _)| *s == status) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "readiness not {status} within {within:?}; last answer {last:?}; log:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `series` equals `value`.
    pub async fn wait_metric(&self, series: &str, value: f64, within: Duration) {
        eventually(within, || async {
            self.metrics()
                .and_then(|m| (m.get(series).copied() == Some(value)).then_some(()))
        })
        .await;
    }

    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .and_then(|m| m.get(series).copied())
            .unwrap_or(0.0)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("polling the child")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        self.wait_exit(within)
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dm-consumer did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// How long [`publish`] waits after the last publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Until the client has flushed them to the server.
    Flushed,
    /// Until the server has routed every one of them: a message to the publisher's own inbox
    /// comes back only after the server has handled all the publishes sent before it on the
    /// same connection.
    Routed,
}

/// Publishes `bodies` on `subject`, then waits as `until` says.
pub async fn publish(
    nats_url: &str,
    subject: &str,
    bodies: impl IntoIterator<Item = Vec<u8>>,
    until: Until,
) {
    use futures::StreamExt;
    let client = async_nats::connect(nats_url)
        .await
        .expect("connecting the test publisher");
    let fence = match until {
        Until::Flushed => None,
        Until::Routed => {
            let inbox = client.new_inbox();
            let echo = client
                .subscribe(inbox.clone())
                .await
                .expect("fence subscription");
            Some((inbox, echo))
        }
    };
    for body in bodies {
        client
            .publish(subject.to_owned(), body.into())
            .await
            .expect("publishing");
    }
    if let Some((inbox, _)) = &fence {
        client
            .publish(inbox.clone(), "fence".into())
            .await
            .expect("fence");
    }
    client.flush().await.expect("flushing");
    if let Some((_, mut echo)) = fence {
        tokio::time::timeout(Duration::from_secs(60), echo.next())
            .await
            .expect("the fence came back")
            .expect("fence message");
    }
}

/// The fixture envelopes, one per line, empty lines included.
pub fn fixture_lines() -> Vec<Vec<u8>> {
    let text = include_str!("../../../events/tests/fixtures/envelopes.ndjson");
    let mut lines: Vec<Vec<u8>> = text.split('\n').map(|l| l.as_bytes().to_vec()).collect();
    lines.pop(); // the file ends with a newline
    lines
}
