//! Command-line and environment configuration.
//!
//! Every setting is a clap `#[arg(long, env)]`, grouped by what it configures,
//! so `booking-service serve --help` documents the whole service. The defaults
//! work on a laptop with Postgres and Redis on localhost.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::StrategyName;

/// A horizontally scaled ticket-booking service that teaches concurrency control.
#[derive(Debug, Parser)]
#[command(name = "booking-service", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s settings, so that running with no subcommand serves.
    #[command(flatten)]
    pub serve: Box<ServeConfig>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the booking API (the default when no subcommand is given).
    Serve(Box<ServeConfig>),
    /// Apply the database migrations and exit.
    Migrate(DatabaseConfig),
    /// GET /health on a running replica; exit 0 when it answers 200, 1 otherwise.
    Healthcheck(HealthcheckConfig),
    /// The README's exercise for every strategy against a running cluster:
    /// concurrent bookings of one seat, counted per strategy and replica.
    Exercises(ExercisesConfig),
    /// Every strategy under the same contended load through the load
    /// balancer: a measured table of bookings, double bookings, latency,
    /// throughput, retries and contentions.
    Compare(CompareConfig),
    /// Switching is a race too: contended bookings through the load balancer
    /// while the strategy flips among the safe ones; then what the database
    /// holds against what the clients were told.
    Flip(FlipConfig),
    /// An independent audit of what Postgres holds (and, given a client
    /// history, of what clients were told): exits 1 when an invariant of a
    /// safe strategy is broken.
    Audit(AuditConfig),
    /// The fault lab: break the running native cluster on purpose (through
    /// scripts/cluster.sh) and see what every strategy does about it.
    Faults(FaultsConfig),
}

/// Everything `serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub redis: RedisConfig,
    #[command(flatten)]
    pub locking: LockingConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// This replica's name, sent as `X-Instance-Id` (default: the host name).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// The service name reported by /health and in traces.
    #[arg(long, env = "SERVICE_NAME", default_value = "booking-service")]
    pub service_name: String,
    /// Largest request body accepted, in bytes (413 past it).
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 16 * 1024)]
    pub body_limit_bytes: usize,
    /// Longest any request may take, in milliseconds: past it the client gets
    /// 504, and a booking under way still finishes whole in its own task.
    #[arg(long, env = "REQUEST_DEADLINE_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub request_deadline_ms: u64,
    /// Most seat-map streams (`GET /events/{id}/stream`) this replica serves at once; past it, 503.
    #[arg(long, env = "MAX_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_streams: u64,
    /// When set, every `/admin/*` request needs `Authorization: Bearer <token>`;
    /// unset, admin is open to anyone who can reach the replica.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
    /// How often this replica announces itself in Redis, in milliseconds.
    #[arg(long, env = "HEARTBEAT_INTERVAL_MS", default_value_t = 2000)]
    pub heartbeat_interval_ms: u64,
    /// How long a strategy switch (or reset) waits for each live replica to
    /// drain its in-flight bookings before it goes ahead without it, in
    /// milliseconds; a replica waits as long for its own in-flight bookings.
    #[arg(long, env = "SWITCH_TIMEOUT_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub switch_timeout_ms: u64,
    /// How long an Idempotency-Key is remembered, in seconds.
    #[arg(long, env = "IDEMPOTENCY_TTL_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_ttl_secs: u64,
    /// How long a request may hold its Idempotency-Key before a retry may take
    /// it over (the request is presumed dead), in seconds.
    #[arg(long, env = "IDEMPOTENCY_IN_FLIGHT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_in_flight_secs: u64,
}

impl ServerConfig {
    /// The configured instance id, or the host name (which Docker sets to the
    /// container id).
    pub fn instance_id(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Postgres connection URL. The bookings' own connections do not use
    /// TLS: run Postgres where it can be reached without (as the lab does).
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/booking", hide_env_values = true)]
    pub database_url: String,
    /// Most connections each of this replica's two pools holds open: the
    /// bookings' own, and sqlx's for everything else (idempotency keys, admin,
    /// seat maps). Each opens connections only as they are needed.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
    /// Create the database named in the URL when it does not exist yet.
    #[arg(long, env = "DATABASE_CREATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub database_create: bool,
    /// Longest a statement waits for a row lock, in milliseconds (Postgres
    /// `lock_timeout`): `pessimistic` answers `lock_busy` past it, any other
    /// write 503.
    #[arg(long, env = "DATABASE_LOCK_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub database_lock_timeout_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct RedisConfig {
    /// The main Redis: cluster-wide strategy, heartbeats, single-node locks.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", hide_env_values = true)]
    pub redis_url: String,
    /// The Redlock nodes, comma separated (default: the main Redis alone).
    #[arg(long, env = "REDLOCK_URLS", value_delimiter = ',', hide_env_values = true)]
    pub redlock_urls: Vec<String>,
    /// Prefix of every Redis key and channel this service uses; replicas that
    /// share a prefix form one cluster.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "booking:")]
    pub redis_key_prefix: String,
}

impl RedisConfig {
    /// The Redlock nodes, falling back to the main Redis.
    pub fn redlock_nodes(&self) -> Vec<String> {
        if self.redlock_urls.is_empty() { vec![self.redis_url.clone()] } else { self.redlock_urls.clone() }
    }
}

#[derive(Debug, Clone, Args)]
pub struct LockingConfig {
    /// Strategy to start with when Redis holds none yet; once set, Redis wins.
    #[arg(long, env = "LOCKING_STRATEGY", default_value = "none")]
    pub strategy: StrategyName,
    /// The simulated payment step between reading a seat and writing it, in
    /// milliseconds: the race window.
    #[arg(long, env = "HOLD_MS", default_value_t = 50)]
    pub hold_ms: u64,
    /// Time-to-live of Redis locks, in milliseconds.
    #[arg(long, env = "LOCK_TTL_MS", default_value_t = 5000)]
    pub lock_ttl_ms: u64,
    /// How long to keep trying for a lock someone else holds before answering
    /// `lock_busy`, in milliseconds (0: try once).
    #[arg(long, env = "LOCK_WAIT_MS", default_value_t = 0)]
    pub lock_wait_ms: u64,
    /// Retries after an optimistic version conflict.
    #[arg(long, env = "OPTIMISTIC_MAX_RETRIES", default_value_t = 3)]
    pub optimistic_max_retries: u32,
    /// First optimistic backoff in milliseconds; doubles on every retry, with jitter.
    #[arg(long, env = "OPTIMISTIC_BACKOFF_MS", default_value_t = 10)]
    pub optimistic_backoff_ms: u64,
}

impl LockingConfig {
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.hold_ms)
    }
    pub fn lock_ttl(&self) -> Duration {
        Duration::from_millis(self.lock_ttl_ms)
    }
    pub fn lock_wait(&self) -> Duration {
        Duration::from_millis(self.lock_wait_ms)
    }
}

#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Log filter, in `tracing_subscriber::EnvFilter` syntax.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "LOG_JSON", default_value_t = false, action = clap::ArgAction::Set)]
    pub log_json: bool,
    /// OTLP/HTTP collector to send traces to, e.g. http://127.0.0.1:4318
    /// (Jaeger); traces are not exported when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckConfig {
    /// Address of the replica to check.
    #[arg(long, env = "HEALTHCHECK_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Give up after this many milliseconds.
    #[arg(long, env = "HEALTHCHECK_TIMEOUT_MS", default_value_t = 2000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ExercisesConfig {
    /// The load balancer (or a single replica) to send requests to.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
    /// Strategies to exercise, comma separated (default: all seven).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// Concurrent bookings per strategy.
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
    #[command(flatten)]
    pub admin: AdminAuth,
}

#[derive(Debug, Clone, Args)]
pub struct CompareConfig {
    /// The load balancer (or a single replica) to send requests to.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
    /// Strategies to compare, comma separated (default: all seven).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// How long to load each strategy, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub duration_secs: f64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub concurrency: u16,
    /// Consecutive requests that race for the same seat.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub contenders: u16,
    /// Where to write comparison.json and comparison.csv.
    #[arg(long, default_value = "compare-results")]
    pub output_dir: std::path::PathBuf,
    #[command(flatten)]
    pub admin: AdminAuth,
}

#[derive(Debug, Clone, Args)]
pub struct FlipConfig {
    /// The load balancer (or a single replica) to send requests to.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
    /// Strategies to flip among, comma separated (default: the five safe ones).
    #[arg(long, value_delimiter = ',')]
    pub strategies: Vec<StrategyName>,
    /// How long to book, in seconds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub duration_secs: u64,
    /// Milliseconds between two switches.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub interval_ms: u64,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=2000))]
    pub concurrency: u16,
    /// Consecutive requests that race for the same seat.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub contenders: u16,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminAuth,
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
    pub history: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FaultsConfig {
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    pub scenarios: Vec<crate::faults::Scenario>,
    /// The load balancer.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:8000")]
    pub base_url: String,
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
    pub history: Option<std::path::PathBuf>,
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
    #[command(flatten)]
    pub admin: AdminAuth,
}

/// The token a lab command sends to `/admin/*`, when the replicas have one.
#[derive(Debug, Clone, Args)]
pub struct AdminAuth {
    /// The replicas' ADMIN_TOKEN, sent as `Authorization: Bearer <token>`.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,
}

impl AdminAuth {
    pub fn token(&self) -> Option<&str> {
        self.admin_token.as_ref().map(Secret::expose)
    }
}

/// A setting that must never reach a log: its `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
