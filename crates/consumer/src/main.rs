//! dm-consumer: parse config, start telemetry and signals, run (see the `consumer` crate).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use consumer::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = config.validate() {
        eprintln!("dm-consumer: invalid configuration: {e}");
        return ExitCode::from(2);
    }
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "dm-consumer: {}",
                runtime::redact::redact_text(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    if let Some(path) = &config.replay {
        let mut processor = consumer::replay::replay(path, config.processor()?)
            .await
            .with_context(|| format!("replaying {}", path.display()))?;
        let labels = processor.labels().clone();
        println!("{}", consumer::replay::summary(&processor.take(), &labels));
        return Ok(());
    }
    runtime::telemetry::init(&config.log)?;
    let shutdown = runtime::shutdown::on_signals().context("installing signal handlers")?;
    consumer::run(config, shutdown).await?;
    Ok(())
}
