//! The command line: `dm-demo run` (the default) and `dm-demo seed`.

use std::path::PathBuf;

/// The whole pipeline on one machine.
#[derive(Debug, clap::Parser)]
#[command(name = "dm-demo", version)]
pub struct Cli {
    /// What to do (default: `run`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run` when no subcommand is given.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Seed a database, start every service, show a summary, stop (the default).
    Run(RunArgs),
    /// Only (re)create the database `MYSQL_URI` names and seed it (the compose one-shot).
    Seed(SeedArgs),
}

/// What the seeded data looks like.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// Symbols to seed, audit and analyse.
    #[arg(
        long,
        env = "SUPPORTED_PAIRS",
        value_delimiter = ',',
        default_value = "BTCUSDT,ETHUSDT,BNBUSDT,ADAUSDT,SOLUSDT"
    )]
    pub symbols: Vec<String>,
    /// Days of 1h and 1d history (analytics reads 30 d windows).
    #[arg(long, default_value_t = 35, value_parser = clap::value_parser!(i64).range(2..))]
    pub days: i64,
    /// Days of 5m, 15m and 30m history (at least the auditor's 48 h window).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(2..))]
    pub fine_days: i64,
    /// Seed of the generated prices.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// `dm-demo seed`.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// The database to recreate and seed (dropped first!).
    #[arg(long, env = "MYSQL_URI", hide_env_values = true)]
    pub mysql_uri: String,
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `dm-demo run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Leave everything running (load included) after the summary, until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Print the summary as one JSON object on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// MariaDB to use (reused if listening, else started): root, empty password.
    #[arg(long, default_value_t = 3306)]
    pub mysql_port: u16,
    /// The demo database (dropped and recreated each run).
    #[arg(long, default_value = "dm_demo")]
    pub database: String,
    /// Drop the demo database at the end (tests).
    #[arg(long)]
    pub drop_database: bool,
    /// NATS to use (reused if listening, else started).
    #[arg(long, default_value_t = 4222)]
    pub nats_port: u16,
    /// Load: messages per second (production is ~200 per pod).
    #[arg(long, default_value_t = 200)]
    pub rate: u64,
    /// Load: seconds of publishing before the summary.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Seconds between audit cycles (AUDIT_INTERVAL).
    #[arg(long, default_value_t = 60)]
    pub audit_interval: u64,
    /// Seconds between analytics cycles (ANALYTICS_INTERVAL).
    #[arg(long, default_value_t = 60)]
    pub analytics_interval: u64,
    /// Give up waiting for the first audit and analytics results after this many seconds.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Where dm-consumer, dm-loadgen, dm-auditor and dm-analytics are (default: next to dm-demo).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// SecantusDB's server (default: `.venv-mongo/bin/secantusd-py` in the repository).
    #[arg(long)]
    pub mongo_bin: Option<PathBuf>,
    /// Where logs go (default: a new directory under `target/demo/`).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}
