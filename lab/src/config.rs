//! The lab commands' settings.
//!
//! Every command that talks to a cluster takes one [`Target`] (where, and
//! the admin token); every command that loads it takes one [`Load`] (how
//! many clients, how hard they contend, for how long). Both are flattened
//! into each command, so `--base-url` or `--concurrency` mean the same
//! everywhere. None of this reaches a replica's settings.

use std::path::PathBuf;
use std::time::Duration;

use booking_server::config::Secret;
use booking_server::domain::StrategyName;
use clap::Args;

use crate::client::LabClient;

/// The cluster a lab command drives.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The load balancer (or a single replica) to send requests to.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
    /// The replicas' ADMIN_TOKEN, sent as `Authorization: Bearer <token>`.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
}

impl Target {
    /// A client of the base URL that sends the admin token.
    pub fn client(&self) -> anyhow::Result<LabClient> {
        self.client_of(&self.base_url)
    }

    /// A client of another address of the same cluster (one replica's own),
    /// sending the same admin token.
    pub fn client_of(&self, url: &str) -> anyhow::Result<LabClient> {
        LabClient::new(url)?.with_admin_token(self.admin_token.as_ref().map(Secret::expose))
    }
}

/// Contended load: `concurrency` clients book for a while, `contenders`
/// consecutive requests racing for each seat.
#[derive(Debug, Clone, Args)]
pub struct Load {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub concurrency: u16,
    /// Consecutive requests that race for the same seat.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub contenders: u16,
    /// How long to book, in seconds, more than 0 and at most 600 (compare:
    /// per strategy, 5 by default; flip: 15 by default).
    #[arg(long, value_parser = seconds)]
    pub duration_secs: Option<f64>,
}

impl Load {
    /// The duration asked for, or the command's own default.
    pub fn duration_or(&self, default_secs: f64) -> Duration {
        Duration::from_secs_f64(self.duration_secs.unwrap_or(default_secs))
    }
}

fn seconds(value: &str) -> Result<f64, String> {
    let secs: f64 = value.parse().map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if secs > 0.0 && secs <= 600.0 { Ok(secs) } else { Err(format!("must be more than 0 and at most 600, got {value}")) }
}

#[derive(Debug, Clone, Args)]
pub struct ExercisesConfig {
    #[command(flatten)]
    pub target: Target,
    /// Strategies to exercise, comma separated (default: all eight).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// Concurrent bookings of the one seat, per strategy.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub concurrency: u16,
    /// The seat everyone races for.
    #[arg(long, default_value = "A1")]
    pub seat: String,
    /// The event the seat belongs to.
    #[arg(long, default_value_t = 1)]
    pub event_id: i64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompareConfig {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub load: Load,
    /// Strategies to compare, comma separated (default: all eight).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// Where to write comparison.json, comparison.csv and comparison.svg.
    #[arg(long, default_value = "compare-results")]
    pub output_dir: PathBuf,
    /// Print JSON instead of a table (the files are written either way).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FlipConfig {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub load: Load,
    /// Strategies to flip among, comma separated (default: the six safe ones).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// Milliseconds between two switches.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval_ms: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AuditConfig {
    /// The database to audit (the native cluster's by default).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:15432/booking", hide_env_values = true)]
    pub database_url: String,
    /// Only this event.
    #[arg(long)]
    pub event: Option<i64>,
    /// A JSON-lines history of requests and answers to check against the database.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FaultsConfig {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    pub scenarios: Vec<crate::faults::Scenario>,
    #[command(flatten)]
    pub target: Target,
    /// Each replica's own address, replica-1 first, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003")]
    pub replica_urls: Vec<String>,
    /// The cluster's database, for the audit.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:15432/booking", hide_env_values = true)]
    pub database_url: String,
    /// Append every answer the clients got to this file, as JSON lines for
    /// `booking-service audit --history`; the scenarios' events are then kept
    /// for that audit (delete them with DELETE /admin/events/{id}).
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// `postgres-crash`: `off` also runs it with commits acknowledged before
    /// they are on disk (set with ALTER SYSTEM, then set back), to show what
    /// that loses; the cluster itself stays durable.
    #[arg(long, value_enum, default_value_t = crate::faults::crashes::SynchronousCommit::On)]
    pub synchronous_commit: crate::faults::crashes::SynchronousCommit,
    /// The seed of `soak`'s faults, to replay a run (it prints the one it drew).
    #[arg(long)]
    pub seed: Option<u64>,
    /// How long `soak` runs, in seconds (at least one fault of every kind per
    /// strategy, however short).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=3600))]
    pub soak_secs: u64,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FlashSaleConfig {
    #[command(flatten)]
    pub target: Target,
    /// Strategies to run, comma separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// Customers in the sale, each after one seat.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub customers: u16,
    /// Rows of the sale's event, and seats per row (20 seats by default).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rows: u16,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub seats_per_row: u16,
    /// How long a hold keeps its seat, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=900_000))]
    pub ttl_ms: u64,
    /// The share of customers who walk away from their hold (half release
    /// it, half let it expire), from 0 to 1.
    #[arg(long, default_value_t = 0.3, value_parser = share)]
    pub abandon: f64,
    /// Payment takes a uniform time between these, in milliseconds; past the
    /// TTL it lands late.
    #[arg(long, default_value_t = 100)]
    pub pay_min_ms: u64,
    #[arg(long, default_value_t = 2500)]
    pub pay_max_ms: u64,
    /// The longest one strategy's sale may run, in seconds.
    #[arg(long, default_value_t = 60.0, value_parser = seconds)]
    pub limit_secs: f64,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

fn share(value: &str) -> Result<f64, String> {
    let share: f64 = value.parse().map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..=1.0).contains(&share) { Ok(share) } else { Err(format!("must be from 0 to 1, got {value}")) }
}
