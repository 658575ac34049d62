use reqwest::StatusCode;

use crate::helpers::{Options, RedisServer, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_names_the_service_instance_and_strategy() {
    let app = spawn_app().await;

    let response = app.client.get(format!("{}/health", app.address)).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-instance-id"], "replica-a");
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "booking-service");
    assert_eq!(body["instance"], "replica-a");
    assert_eq!(body["strategy"], "none");
}

#[tokio::test]
async fn every_response_names_the_replica_even_errors() {
    let app = spawn_app().await;

    for path in ["/events/1", "/events/999", "/no/such/route", "/admin/stats"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.headers()["x-instance-id"], "replica-a", "{path}");
    }
}

#[tokio::test]
async fn a_client_request_id_is_echoed_back() {
    let app = spawn_app().await;

    let response = app.client.get(format!("{}/health", app.address)).header("x-request-id", "trace-me-42").send().await.unwrap();

    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn ready_checks_postgres_and_redis_and_fails_without_redis() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(Options { redis_url: redis.url(), ..Options::default() }).await;

    let (status, body) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");

    redis.stop();

    for path in ["/ready", "/health?ready=true"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["checks"]["postgres"], "ok");
        assert_ne!(body["checks"]["redis"], "ok");
    }
    // Liveness stays green: the process itself is fine.
    assert_eq!(app.get("/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_finishes_the_booking_in_flight_then_refuses_new_connections() {
    // Under `mutex`, a booking in flight is visible: its seat is in the map.
    let app = spawn_app_with(Options { strategy: "mutex", hold_ms: 400, ..Options::default() }).await;
    let address = app.address.clone();
    let shutdown = app.shutdown_token();

    let in_flight = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{address}/book");
        async move {
            client.post(url).json(&serde_json::json!({"event_id": 1, "seat_number": "A1", "customer_id": "last"})).send().await
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let metrics = app.client.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.lines().any(|line| line.starts_with("mutex_seats_tracked") && line.ends_with(" 1")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the booking never got in flight");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    shutdown.cancel();

    let answer = in_flight.await.unwrap().expect("the in-flight booking gets its answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "confirmed");
    let options = app.options.clone();
    app.stop().await;
    assert!(reqwest::Client::new().get(format!("{address}/health")).send().await.is_err(), "no longer accepting");
    assert_eq!(crate::helpers::count(&options, "SELECT count(*) FROM bookings WHERE customer_id = 'last'").await, 1);
}

#[tokio::test]
async fn the_healthcheck_subcommand_exits_0_for_a_healthy_replica_and_1_otherwise() {
    let app = spawn_app().await;
    let binary = env!("CARGO_BIN_EXE_booking-service");
    let addr = app.address.trim_start_matches("http://").to_owned();

    let healthy = tokio::process::Command::new(binary).args(["healthcheck", "--addr", &addr]).output().await.unwrap();
    assert!(healthy.status.success(), "{healthy:?}");

    let reserved = crate::helpers::ports::reserve();
    let closed = format!("127.0.0.1:{}", reserved.port);
    let unhealthy = tokio::process::Command::new(binary).args(["healthcheck", "--addr", &closed]).output().await.unwrap();
    assert_eq!(unhealthy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unhealthy.stderr).contains("cannot connect"), "{unhealthy:?}");
}

#[tokio::test]
async fn the_migrate_subcommand_creates_the_database_and_its_seed() {
    let options = Options::default();
    let binary = env!("CARGO_BIN_EXE_booking-service");

    let output = tokio::process::Command::new(binary).args(["migrate", "--database-url", &options.database_url]).output().await.unwrap();

    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "migrations applied");
    assert_eq!(crate::helpers::count(&options, "SELECT count(*) FROM seats WHERE event_id = 1").await, 100);
}
