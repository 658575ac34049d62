//! A replica's configuration: `serve`, `migrate` and `healthcheck`.
//!
//! Every setting is a clap `#[arg(long, env)]`, grouped by what it configures,
//! so `booking-service serve --help` documents the whole service. The defaults
//! work on a laptop with Postgres and Redis on localhost. The lab's client
//! tools have settings of their own (`booking_lab::config`); a replica knows
//! nothing of them.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::domain::StrategyName;

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
    pub etcd: EtcdConfig,
    #[command(flatten)]
    pub locking: LockingConfig,
    #[command(flatten)]
    pub holds: HoldsConfig,
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
    /// Booking connections the whole cluster holds open at most: each live
    /// replica's booking pool is its share of this budget (divided among the
    /// replicas whose heartbeat is fresh, and divided again when one joins or
    /// leaves), so more replicas do not mean more Postgres backends fighting
    /// over the same cores. Default: twelve per core of this machine, where
    /// the lab's Postgres runs too; when Postgres runs elsewhere, size it
    /// from the database's cores.
    #[arg(long, env = "DATABASE_CONNECTION_BUDGET", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub database_connection_budget: Option<u32>,
    /// Most connections this replica's other pool holds open: sqlx's, for
    /// everything but the booking itself (idempotency keys, admin, seat
    /// maps). It opens connections only as they are needed.
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

/// The default connection budget per core of the machine: see
/// `docs/pool.md` for the sweep it comes from.
pub const CONNECTIONS_PER_CORE: usize = 12;

impl DatabaseConfig {
    /// Booking connections the whole cluster holds open at most.
    pub fn connection_budget(&self) -> usize {
        match self.database_connection_budget {
            Some(budget) => budget as usize,
            None => CONNECTIONS_PER_CORE * std::thread::available_parallelism().map_or(1, |cores| cores.get()),
        }
    }
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
pub struct EtcdConfig {
    /// The etcd cluster's members, comma separated: the `etcd` strategy's
    /// lock service. A replica connects lazily, so it starts (and serves
    /// every other strategy) while etcd is down.
    #[arg(long, env = "ETCD_ENDPOINTS", value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_endpoints: Vec<String>,
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
    /// Time-to-live of the Redis locks, in milliseconds; the `etcd` lock's
    /// lease is this, rounded up to whole seconds and raised to etcd's
    /// minimum lease (2 s at etcd's default election timeout).
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

/// Seat holds (`POST /holds`): how long they last, and how many one
/// customer may keep.
#[derive(Debug, Clone, Args)]
pub struct HoldsConfig {
    /// How long a hold keeps its seat when the request names no `ttl_ms`,
    /// in milliseconds (within the `ttl_ms` range, 100 to 900000).
    #[arg(long, env = "SEAT_HOLD_TTL_MS", default_value_t = 120_000, value_parser = clap::value_parser!(u64).range(100..=900_000))]
    pub seat_hold_ttl_ms: u64,
    /// How many live holds one customer may keep at once (429 past it).
    #[arg(long, env = "SEAT_HOLDS_PER_CUSTOMER", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seat_holds_per_customer: u64,
    /// How often each replica sweeps expired holds, in milliseconds. A seat
    /// is free the moment its hold expires; the sweep writes the hold down
    /// as `expired` and tells the seat maps.
    #[arg(long, env = "SEAT_HOLD_SWEEP_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub seat_hold_sweep_ms: u64,
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
