//! dm-analytics: parse config, start telemetry and signals, run a subcommand (see the
//! `analytics` crate).

use std::process::ExitCode;

use analytics::config::{Cli, Command};
use anyhow::Context;
use clap::Parser;
use runtime::redact::redact_text;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dm-analytics: {}", redact_text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let settings = match args.validate() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "dm-analytics: invalid configuration: {}",
                        redact_text(&e.to_string())
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            runtime::telemetry::init(&args.log)?;
            let shutdown = runtime::shutdown::on_signals().context("installing signal handlers")?;
            analytics::schedule::run(*args, settings, shutdown).await?;
        }
        Command::Compute(args) => match analytics::compute::run(&args) {
            Ok(out) => println!("{out}"),
            Err(e) => {
                eprintln!("dm-analytics compute: {e}");
                return Ok(ExitCode::from(2));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}
