//! Shared setup of the auditor's process-level tests: the binary as a child process and a TCP
//! proxy a test can cut to simulate a MySQL outage. Ports, polling and `/metrics` reads are
//! `testkit`'s.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

use testkit::free_port;
use tokio::io::copy_bidirectional;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The dm-auditor binary with a clean environment plus `envs`; killed on drop.
pub struct Auditor(pub Child);

impl Auditor {
    /// Starts `dm-auditor <args>`; stdout and stderr go to the given files.
    pub fn start(args: &[&str], envs: &[(&str, String)], log: &std::path::Path) -> Auditor {
        let out = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_dm-auditor"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn dm-auditor");
        Auditor(child)
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP proxy from a local port to `target`; `cut` drops every connection and stops
/// listening, `start` on the same port resumes.
pub struct Proxy {
    pub port: u16,
    target: String,
    stop: Option<CancellationToken>,
}

impl Proxy {
    /// A proxy on a free port, listening.
    pub async fn new(target: &str) -> Proxy {
        let mut p = Proxy {
            port: free_port(),
            target: target.to_owned(),
            stop: None,
        };
        p.start().await;
        p
    }

    /// Starts listening (again).
    pub async fn start(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("proxy bind");
        let stop = CancellationToken::new();
        let target = self.target.clone();
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    () = token.cancelled() => return,
                };
                let Ok((mut inbound, _)) = accepted else {
                    continue;
                };
                let target = target.clone();
                let token = token.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        self.stop = Some(stop);
    }

    /// Drops every connection and stops listening.
    pub fn cut(&mut self) {
        if let Some(s) = self.stop.take() {
            s.cancel();
        }
    }
}
