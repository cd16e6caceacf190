//! dm-demo: the whole pipeline on one machine, with no cluster.
//!
//! # Layout
//! - [`config`]: the command line (`run`, the default, and `seed`).
//! - [`market`]: a seeded, pure generator of realistic klines with injected faults.
//! - [`seeding`]: a demo MySQL database with the extractor's schema, filled from [`market`].
//! - [`services`]: NATS and MariaDB reused or started, our own SecantusDB; stopped by PID.
//! - [`procs`]: child processes with log files, stopped with SIGTERM, exit codes kept.
//! - [`probe`]: HTTP GETs of the admin endpoints and Prometheus text parsing.
//! - [`results`]: what the auditor and analytics wrote to MongoDB.
//! - [`events`]: the data-quality events the auditor published, counted.
//! - [`summary`]: the facts of a run, as JSON or a short text.
//! - [`run`]: the orchestration, step by step; `launch` starts the services under test and
//!   `collect` gathers what they produced.

mod collect;
pub mod config;
pub mod events;
mod launch;
pub mod market;
pub mod probe;
pub mod procs;
pub mod results;
pub mod run;
pub mod seeding;
pub mod services;
pub mod summary;
pub mod trades;

pub use config::{Cli, Command, RunArgs, SeedArgs};
pub use summary::Summary;

/// `dm-demo seed`: recreates the database `MYSQL_URI` names and fills it; returns rows inserted.
///
/// # Errors
/// See [`seeding::recreate`].
pub async fn seed(args: &SeedArgs) -> Result<usize, seeding::SeedError> {
    let plan = market::Plan {
        now: chrono::Utc::now(),
        symbols: args.data.symbols.clone(),
        days: args.data.days,
        fine_days: args.data.fine_days,
        seed: args.data.seed,
    };
    let data = market::generate(&plan);
    seeding::recreate(&args.mysql_uri, &data)
        .await?
        .close()
        .await;
    for f in &data.faults {
        run::step(format!(
            "injected {}: {} {} {}",
            f.kind, f.symbol, f.timeframe, f.description
        ));
    }
    Ok(data.row_count())
}
