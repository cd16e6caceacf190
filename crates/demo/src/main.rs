//! dm-demo: parse the command line and run it (see the `demo` crate).

use std::process::ExitCode;

use clap::Parser;
use demo::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(cli.run)) {
        Command::Run(args) => match demo::run::run(args.clone()).await {
            Ok(summary) => {
                if args.keep && !args.json {
                    // The summary was printed before waiting for Ctrl-C.
                    print!("{}", summary.render_exits());
                } else {
                    demo::run::print_summary(&summary, args.json);
                }
                if summary.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("dm-demo: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Seed(args) => match demo::seed(&args).await {
            Ok(rows) => {
                demo::run::step(format!("seeded {rows} klines"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dm-demo seed: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
