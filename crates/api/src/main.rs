//! dm-api: parse config, start telemetry and signals, serve (see the `api` crate).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use runtime::redact::redact_text;

#[tokio::main]
async fn main() -> ExitCode {
    let config = api::Config::parse();
    if let Err(e) = config.validate() {
        eprintln!(
            "dm-api: invalid configuration: {}",
            redact_text(&e.to_string())
        );
        return ExitCode::from(2);
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dm-api: {}", redact_text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

async fn run(config: api::Config) -> anyhow::Result<()> {
    runtime::telemetry::init(&config.log)?;
    let shutdown = runtime::shutdown::on_signals().context("installing signal handlers")?;
    api::run(config, shutdown).await?;
    Ok(())
}
