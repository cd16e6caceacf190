//! dm-auditor: parse config, start telemetry and signals, run a subcommand (see the `auditor` crate).

use std::process::ExitCode;

use anyhow::Context;
use auditor::{Cli, Command};
use clap::Parser;
use runtime::redact::redact_text;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dm-auditor: {}", redact_text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let settings = match args.validate() {
                Ok(s) => s,
                Err(e) => return Ok(invalid(&e)),
            };
            runtime::telemetry::init(&args.log)?;
            let shutdown = runtime::shutdown::on_signals().context("installing signal handlers")?;
            auditor::schedule::run(*args, settings, shutdown).await?;
        }
        Command::Once(args) => {
            let settings = match args.audit.settings() {
                Ok(s) => s,
                Err(e) => return Ok(invalid(&e)),
            };
            runtime::telemetry::init(&args.log)?;
            let started = std::time::Instant::now();
            let result = auditor::once::once(&args, &settings).await?;
            if args.json {
                let mut out = auditor::output::output(&result.reports);
                out.trades = auditor::trades::output::output(&result.trades);
                let out = serde_json::to_string(&out)?;
                println!("{out}");
            }
            tracing::info!(
                written = ?result.written,
                "{}",
                auditor::once::summary(&result.reports, started.elapsed().as_secs_f64())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn invalid(e: &auditor::config::ConfigError) -> ExitCode {
    eprintln!(
        "dm-auditor: invalid configuration: {}",
        redact_text(&e.to_string())
    );
    ExitCode::from(2)
}
