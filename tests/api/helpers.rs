//! The test harness: real Postgres, real Redis, one fresh database and one
//! Redis key prefix per test, so the suite runs in parallel.
//!
//! `spawn_app()` builds a replica on a random port and returns a [`TestApp`]
//! with typed request helpers. Logs stay silent unless `TEST_LOG` is set.
//! Each test's database is `database.rs`'s; the private Redis and Postgres
//! servers that fault tests break are `../common/servers.rs`.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use booking_server::app::Application;
use booking_server::booking::Bookings;
use booking_server::domain::StrategyName;
use booking_lab::client::LabClient;
use booking_lab::exercises::{self, Exercise};
use booking_server::config::ServeConfig;
use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "../common/ports.rs"]
pub mod ports;
#[path = "../common/servers.rs"]
pub mod servers;

pub use crate::database::{TestDatabase, count};
use crate::database::drop_stale_databases;
pub use servers::{EtcdServer, PostgresServer, RedisServer};

/// The Postgres server the tests share, as user postgres without a
/// password: `TEST_DATABASE_URL` (scripts/test.sh sets it, to a private
/// server when the machine's own wants a password), else 127.0.0.1:5432.
pub fn postgres() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}
pub const REDIS: &str = "redis://127.0.0.1:6379";

static TRACING: Once = Once::new();

fn init_logs() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt().with_env_filter("info,booking_server=debug,booking_lab=debug").with_test_writer().init();
        }
    });
}

/// What to build a replica with; `Default` is the laptop default with a
/// fresh database and key prefix.
#[derive(Clone)]
pub struct Options {
    pub database_url: String,
    pub redis_url: String,
    pub redlock_urls: Vec<String>,
    /// The `etcd` strategy's members; empty leaves the default (no etcd:
    /// `etcd` answers 503).
    pub etcd_urls: Vec<String>,
    pub prefix: String,
    pub instance_id: String,
    pub strategy: &'static str,
    pub hold_ms: u64,
    pub lock_ttl_ms: u64,
    pub lock_wait_ms: u64,
    pub optimistic_max_retries: u32,
    pub switch_timeout_ms: u64,
    pub idempotency_ttl_secs: u64,
    pub idempotency_in_flight_secs: u64,
    /// The replica's ADMIN_TOKEN; empty leaves admin open.
    pub admin_token: String,
    pub request_deadline_ms: u64,
    pub max_streams: u64,
    /// Drops the test's database when the last holder (the test's replicas
    /// and their options) is gone, panicking tests included.
    pub _database: Arc<TestDatabase>,
}

impl Default for Options {
    fn default() -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = TestDatabase::new(&unique[..12]);
        Self {
            database_url: database.url(),
            _database: Arc::new(database),
            redis_url: REDIS.to_owned(),
            redlock_urls: Vec::new(),
            etcd_urls: Vec::new(),
            prefix: format!("test:{}:", &unique[..16]),
            instance_id: "replica-a".to_owned(),
            strategy: "none",
            hold_ms: 200,
            lock_ttl_ms: 5000,
            lock_wait_ms: 0,
            optimistic_max_retries: 3,
            switch_timeout_ms: 1000,
            idempotency_ttl_secs: 86_400,
            idempotency_in_flight_secs: 30,
            admin_token: String::new(),
            request_deadline_ms: 15_000,
            max_streams: 256,
        }
    }
}

impl Options {
    fn serve_config(&self) -> ServeConfig {
        let mut args = vec![
            "booking-service".to_owned(),
            "--listen=127.0.0.1:0".to_owned(),
            format!("--database-url={}", self.database_url),
            format!("--redis-url={}", self.redis_url),
            format!("--redis-key-prefix={}", self.prefix),
            format!("--instance-id={}", self.instance_id),
            format!("--strategy={}", self.strategy),
            format!("--hold-ms={}", self.hold_ms),
            format!("--lock-ttl-ms={}", self.lock_ttl_ms),
            format!("--lock-wait-ms={}", self.lock_wait_ms),
            format!("--optimistic-max-retries={}", self.optimistic_max_retries),
            "--heartbeat-interval-ms=200".to_owned(),
            format!("--switch-timeout-ms={}", self.switch_timeout_ms),
            format!("--idempotency-ttl-secs={}", self.idempotency_ttl_secs),
            format!("--idempotency-in-flight-secs={}", self.idempotency_in_flight_secs),
            "--database-max-connections=15".to_owned(),
            // Given even when empty, so an ADMIN_TOKEN in the environment
            // cannot reach a test that expects admin open.
            format!("--admin-token={}", self.admin_token),
            format!("--request-deadline-ms={}", self.request_deadline_ms),
            format!("--max-streams={}", self.max_streams),
        ];
        if !self.redlock_urls.is_empty() {
            args.push(format!("--redlock-urls={}", self.redlock_urls.join(",")));
        }
        if !self.etcd_urls.is_empty() {
            args.push(format!("--etcd-endpoints={}", self.etcd_urls.join(",")));
        }
        ServeArgs::parse_from(args).serve
    }
}

/// `serve`'s command line, as `booking-service serve` parses it.
#[derive(Parser)]
struct ServeArgs {
    #[command(flatten)]
    serve: ServeConfig,
}

/// One running replica.
pub struct TestApp {
    pub address: String,
    pub options: Options,
    pub client: reqwest::Client,
    /// The replica's booking service, for tests that book without HTTP.
    pub bookings: Bookings,
    cancel: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    init_logs();
    drop_stale_databases().await;
    let cancel = CancellationToken::new();
    let app = Application::build(options.serve_config(), cancel.clone()).await.expect("replica failed to build");
    let address = format!("http://{}", app.local_addr());
    let bookings = app.bookings();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp { address, options, client: reqwest::Client::new(), bookings, cancel, server: Some(server) }
}

impl TestApp {
    /// A second replica of the same cluster: same database, same Redis prefix.
    pub async fn sibling(&self, instance_id: &str) -> TestApp {
        spawn_app_with(Options { instance_id: instance_id.to_owned(), ..self.options.clone() }).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.get(format!("{}{path}", self.address)).send().await.expect("request failed");
        read(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.client.post(format!("{}{path}", self.address)).json(&body).send().await.expect("request failed");
        read(response).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let response = self.client.delete(format!("{}{path}", self.address)).send().await.expect("request failed");
        read(response).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request failed");
        read(response).await
    }

    /// A booking with an `Idempotency-Key`; the answer, and whether it was a replay.
    pub async fn book_with_key(&self, seat: &str, customer: &str, key: &str) -> (StatusCode, Value, bool) {
        let response = self
            .client
            .post(format!("{}/book", self.address))
            .header("idempotency-key", key)
            .json(&json!({ "event_id": 1, "seat_number": seat, "customer_id": customer }))
            .send()
            .await
            .expect("request failed");
        let replayed = response.headers().get("idempotent-replayed").is_some_and(|value| value == "true");
        let (status, body) = read(response).await;
        (status, body, replayed)
    }

    pub async fn book(&self, seat: &str, customer: &str) -> (StatusCode, Value) {
        self.post("/book", json!({ "event_id": 1, "seat_number": seat, "customer_id": customer })).await
    }

    /// A booking's answer with its `Retry-After` header, if it has one.
    pub async fn book_retry_after(&self, seat: &str, customer: &str) -> (StatusCode, Value, Option<String>) {
        let response = self
            .client
            .post(format!("{}/book", self.address))
            .json(&json!({ "event_id": 1, "seat_number": seat, "customer_id": customer }))
            .send()
            .await
            .expect("request failed");
        let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned());
        let (status, body) = read(response).await;
        (status, body, retry_after)
    }

    pub async fn set_strategy(&self, strategy: &str) -> Value {
        let (status, body) = self.post("/admin/strategy", json!({ "strategy": strategy })).await;
        assert_eq!(status, StatusCode::OK, "setting {strategy} failed: {body}");
        body
    }

    pub async fn strategy(&self) -> String {
        self.get("/admin/strategy").await.1["strategy"].as_str().expect("strategy is a string").to_owned()
    }

    /// The strategy, read with an admin token (or none); `None` unless 200.
    pub async fn strategy_with_token(&self, token: Option<&str>) -> Option<String> {
        let mut request = self.client.get(format!("{}/admin/strategy", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request failed");
        let (status, body) = read(response).await;
        (status == StatusCode::OK).then(|| body["strategy"].as_str().expect("strategy").to_owned())
    }

    /// Polls until this replica applies `strategy`, for at most five seconds.
    pub async fn wait_for_strategy(&self, strategy: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.strategy().await != strategy {
            assert!(Instant::now() < deadline, "{} never applied {strategy}", self.options.instance_id);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn reset(&self) {
        let (status, body) = self.post("/admin/reset?event_id=1", json!({})).await;
        assert_eq!(status, StatusCode::OK, "reset failed: {body}");
    }

    pub async fn double_booking_count(&self) -> u64 {
        self.get("/admin/double-bookings?event_id=1").await.1["count"].as_u64().expect("count")
    }

    /// The token that stops this replica, for tests that stop it mid-request.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops the replica gracefully and waits until it has.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task panicked").expect("server failed");
        }
    }
}

/// Fires `count` bookings of one seat at once, spread round-robin over
/// `replicas`, counts the answers, and checks in Postgres itself (not
/// through the API) that the database holds what the clients were told, and
/// that the audit finds nothing broken (every race test goes through here).
pub async fn burst(replicas: &[&TestApp], seat: &str, count: usize) -> Exercise {
    let clients: Vec<LabClient> = replicas.iter().map(|app| LabClient::new(&app.address).expect("client")).collect();
    let strategy: StrategyName = replicas[0].strategy().await.parse().expect("a strategy name");
    let race = exercises::race(&clients, strategy, 1, seat, count).await.expect("burst");
    agrees_in_postgres(&replicas[0].options.database_url, &race, 1, seat).await;
    race
}

/// Panics unless Postgres holds what `race`'s clients were told about
/// `seat`, and the audit of the event finds nothing broken.
pub async fn agrees_in_postgres(database_url: &str, race: &Exercise, event_id: i64, seat: &str) {
    let pool = sqlx::PgPool::connect(database_url).await.expect("the database");
    if let Err(mismatch) = race.check_in_postgres(&pool, event_id, seat).await {
        panic!("the database disagrees with the answers: {mismatch}\n{race:?}");
    }
    pool.close().await;
}

async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

