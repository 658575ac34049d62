//! Building and running one replica.
//!
//! [`Application::build`] connects to Postgres and Redis, applies migrations,
//! loads (or seeds) the cluster's strategy and binds the listener (port 0
//! works, for tests); [`Application::run_until_stopped`] serves until the
//! cancellation token fires, then drains in-flight requests and stops the
//! background tasks.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManagerConfig, PubSub};
use sqlx::PgPool;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::booking::{self, Bookings};
use crate::cluster::ActiveStrategy;
use crate::cluster::barrier::Barrier;
use crate::cluster::heartbeat::Heartbeat;
use crate::cluster::pool_share;
use crate::cluster::listener::{self, Listener};
use crate::config::{DatabaseConfig, Secret, ServeConfig};
use crate::http::AdminToken;
use crate::keys::Keys;
pub use crate::state::AppState;
use crate::state::Shared;
use crate::storage::{self, epoch};
use crate::strategy::Strategies;

/// How long a request waits for a pooled Postgres connection before it is
/// answered 503.
const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one Redis command may take before the request is answered 503.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// One replica, built and bound, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    redis_client: redis::Client,
    /// Subscribed before the replica serves, so it hears every switch.
    pubsub: PubSub,
    heartbeat: Heartbeat,
    pool_follow: pool_share::Follow,
    limits: crate::http::Limits,
    feed_queue: tokio::sync::mpsc::Receiver<crate::live::Change>,
    cancel: CancellationToken,
}

impl Application {
    /// Connects, migrates, loads the strategy and binds. `cancel` stops the
    /// server and every background task it starts.
    pub async fn build(config: ServeConfig, cancel: CancellationToken) -> anyhow::Result<Self> {
        let instance_id = config.server.instance_id();
        let metrics = crate::metrics::install(&instance_id);

        let db = connect_database(&config.database).await?;
        migrate(&db).await?;
        let booking_db = booking_pool(&config.database, &instance_id)?;

        let redis_client = redis::Client::open(config.redis.redis_url.as_str()).context("invalid REDIS_URL")?;
        let redis_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let redis = redis_client
            .get_connection_manager_with_config(redis_config)
            .await
            .with_context(|| format!("cannot connect to Redis at {}", config.redis.redis_url))?;

        let keys = Keys::new(config.redis.redis_key_prefix.clone());
        let applied = epoch::load_or_seed(&db, config.locking.strategy).await.context("cannot load the cluster's strategy")?;
        let pubsub = listener::subscribe(&redis_client, &keys.strategy_channel())
            .await
            .context("cannot subscribe to the cluster channel in Redis")?;
        let strategies = Strategies::new(&config.locking, redis.clone(), &config.redis.redlock_nodes(), &config.etcd, keys.clone()).await?;

        let listener =
            TcpListener::bind(config.server.listen).await.with_context(|| format!("cannot listen on {}", config.server.listen))?;
        tracing::info!(
            instance_id,
            address = %listener.local_addr()?,
            strategy = %applied.name,
            epoch = applied.epoch,
            "replica ready"
        );

        let heartbeat_interval = Duration::from_millis(config.server.heartbeat_interval_ms.max(100));
        let active = Arc::new(ActiveStrategy::new(applied));
        let barrier = Arc::new(Barrier::new(
            active.clone(),
            db.clone(),
            redis.clone(),
            keys.clone(),
            instance_id.clone(),
            heartbeat_interval,
            Duration::from_millis(config.server.switch_timeout_ms),
        ));
        let activity = Arc::new(crate::activity::Activity::default());
        let (feed, feed_queue) = crate::live::Feed::new(config.server.max_streams as usize, cancel.clone());
        let heartbeat = Heartbeat {
            redis: redis.clone(),
            keys: keys.clone(),
            instance_id: instance_id.clone(),
            address: listener.local_addr()?.to_string(),
            interval: heartbeat_interval,
            started_at: chrono::Utc::now().timestamp_millis(),
            activity: activity.clone(),
            booking_pool: booking_db.clone(),
        };
        // The booking pool sized to this replica's share, counting itself in,
        // and then in the register before the first request (so that a switch
        // right after start-up waits for this replica too), with that size.
        let pool_follow = pool_share::Follow {
            redis: redis.clone(),
            keys: keys.clone(),
            instance_id: instance_id.clone(),
            interval: heartbeat_interval,
            budget: config.database.connection_budget(),
        };
        pool_share::apply(&booking_db, &pool_follow).await.context("cannot read the cluster's replicas in Redis")?;
        heartbeat.beat(applied).await.context("cannot announce this replica in Redis")?;
        tracing::info!(connections = booking_db.size(), budget = pool_follow.budget, "booking pool: this replica's share of DATABASE_CONNECTION_BUDGET");

        let bookings = Bookings::new(booking::Parts {
            db: db.clone(),
            booking_db: booking_db.clone(),
            strategies,
            active: active.clone(),
            barrier: barrier.clone(),
            instance_id: instance_id.clone(),
            idempotency: booking::idempotency::Settings {
                ttl: Duration::from_secs(config.server.idempotency_ttl_secs),
                in_flight: Duration::from_secs(config.server.idempotency_in_flight_secs),
                owner: rand::random(),
            },
            feed: feed.clone(),
            activity: activity.clone(),
            tasks: tokio_util::task::TaskTracker::new(),
        });
        let holds = crate::holds::Holds::new(
            bookings.clone(),
            crate::holds::Settings {
                default_ttl_ms: config.holds.seat_hold_ttl_ms as i64,
                per_customer: config.holds.seat_holds_per_customer as i64,
            },
        );
        let state = AppState(Arc::new(Shared {
            db,
            booking_db,
            redis,
            keys,
            instance_id,
            service_name: config.server.service_name.clone(),
            bookings,
            holds,
            hold_sweep: Duration::from_millis(config.holds.seat_hold_sweep_ms),
            active,
            barrier,
            heartbeat_interval,
            metrics,
            locking: config.locking.clone(),
            feed,
            activity,
        }));
        let admin_token = AdminToken::new(config.server.admin_token.as_ref().map(Secret::expose));
        if !admin_token.is_set() {
            tracing::warn!(
                instance = %state.instance_id,
                "ADMIN_TOKEN is not set: /admin/* (switch strategy, reset, create and delete events) is open to anyone who can reach this replica"
            );
        }
        let limits = crate::http::Limits {
            body_bytes: config.server.body_limit_bytes,
            deadline: Duration::from_millis(config.server.request_deadline_ms),
            admin_token,
        };
        Ok(Self { listener, state, redis_client, pubsub, heartbeat, pool_follow, limits, feed_queue, cancel })
    }

    /// The replica's booking service, to book without going through HTTP.
    pub fn bookings(&self) -> crate::booking::Bookings {
        self.state.bookings.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until the cancellation token fires; then stops accepting,
    /// finishes in-flight requests, and waits for the background tasks.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self { listener, state, redis_client, pubsub, heartbeat, pool_follow, limits, feed_queue, cancel } = self;

        let cluster_listener = Listener {
            client: redis_client.clone(),
            channel: state.keys.strategy_channel(),
            db: state.db.clone(),
            active: state.active.clone(),
            barrier: state.barrier.clone(),
        };
        let listener_task = tokio::spawn(cluster_listener.run(pubsub, cancel.clone()));
        let heartbeat_task = tokio::spawn(heartbeat.run(state.active.subscribe(), cancel.clone()));
        let pool_task = tokio::spawn(pool_share::run(state.booking_db.clone(), pool_follow, cancel.clone()));
        let gauges_task = tokio::spawn(crate::gauges::run(state.clone(), cancel.clone()));
        let histograms_task = tokio::spawn(crate::metrics::fold_histograms(state.metrics.clone(), cancel.clone()));
        let expiry_task = tokio::spawn(booking::idempotency::expire_keys(state.db.clone(), cancel.clone()));
        let sweep_task = tokio::spawn(crate::holds::sweep::run(state.booking_db.clone(), state.feed.clone(), state.hold_sweep, cancel.clone()));
        let seat_channel = state.keys.seat_channel();
        let publish_task = tokio::spawn(crate::live::feed::publish_loop(state.redis.clone(), seat_channel.clone(), feed_queue, cancel.clone()));
        let subscribe_task =
            tokio::spawn(crate::live::feed::subscribe_loop(redis_client.clone(), seat_channel, state.feed.updates(), cancel.clone()));
        let liveness_task = tokio::spawn(booking::idempotency::hold_liveness(state.db.clone(), state.bookings.idempotency().owner, cancel.clone()));

        let router = crate::http::router(state.clone(), limits);
        axum::serve(crate::http::LingeringListener(listener), router).with_graceful_shutdown(cancel.clone().cancelled_owned()).await?;
        tracing::info!("stopped accepting; in-flight requests finished");
        // Bookings whose clients hung up are not requests any more, but
        // they still write and store their answers.
        state.bookings.drain().await;

        cancel.cancel();
        let _ = tokio::join!(
            listener_task,
            heartbeat_task,
            pool_task,
            gauges_task,
            histograms_task,
            expiry_task,
            sweep_task,
            liveness_task,
            publish_task,
            subscribe_task
        );
        state.booking_db.close();
        state.db.close().await;
        tracing::info!("replica stopped");
        Ok(())
    }
}

/// Creates the database when asked to and it is missing, then opens a pool.
pub async fn connect_database(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let url = &config.database_url;
    if config.database_create && !sqlx::Postgres::database_exists(url).await.context("cannot reach Postgres")? {
        // Replicas starting together race to create it; losing that race is fine.
        if let Err(error) = sqlx::Postgres::create_database(url).await
            && !sqlx::Postgres::database_exists(url).await.unwrap_or(false)
        {
            return Err(error).context("cannot create the database");
        }
    }
    let options = PgConnectOptions::from_str(url)
        .context("invalid DATABASE_URL")?
        // No statement waits for a row lock without bound: a transaction
        // frozen while it holds one (a paused replica) costs the others at
        // most this long.
        .options([("lock_timeout", config.database_lock_timeout_ms.to_string())]);
    PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(DB_ACQUIRE_TIMEOUT)
        // No ping on every checkout: it is a round trip per booking step. A
        // connection that broke (Postgres restarted) fails its next query,
        // which answers 503, and the pool drops it.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .context("cannot connect to Postgres (is it running? check DATABASE_URL)")
}

/// The booking path's own pool (see [`storage::pipelined`]), with the same
/// lock timeout and acquire timeout as the sqlx pool. It starts with the
/// whole budget; [`pool_share`] cuts it to this replica's share before the
/// first booking.
fn booking_pool(config: &DatabaseConfig, instance_id: &str) -> anyhow::Result<storage::pipelined::Pool> {
    let lock_timeout = Duration::from_millis(config.database_lock_timeout_ms);
    let application_name = format!("booking-service {instance_id} bookings");
    storage::pipelined::pool(&config.database_url, &application_name, config.connection_budget(), lock_timeout, DB_ACQUIRE_TIMEOUT)
}

/// Applies the migrations in `migrations/`; concurrent callers serialise on
/// sqlx's advisory lock.
pub async fn migrate(db: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("../migrations").run(db).await.context("database migration failed")
}
