//! Breaking things on purpose: Redis nodes that die, locks that expire while
//! their holder still works.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Options, PostgresServer, RedisServer, TestApp, count, spawn_app_with};

type Answer = (StatusCode, serde_json::Value);

/// With a 400 ms hold and a 100 ms TTL, the first holder's lock expires while
/// it still "pays"; a second request takes the lock at 200 ms and goes ahead.
async fn outlive_the_lock(app: &TestApp) -> (Answer, Answer) {
    let first = app.book("A1", "slow-payer");
    let second = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.book("A1", "second-holder").await
    };
    tokio::join!(first, second)
}

#[tokio::test]
async fn redlock_books_with_one_node_down_and_refuses_with_two() {
    let mut nodes = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let app = spawn_app_with(Options {
        strategy: "redlock",
        hold_ms: 10,
        redlock_urls: nodes.iter().map(RedisServer::url).collect(),
        ..Options::default()
    })
    .await;
    let (status, body) = app.book("A1", "all-up").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    nodes[0].stop();
    let (status, body) = app.book("A2", "one-down").await;
    assert_eq!(status, StatusCode::OK, "a majority (2 of 3) still grants the lock: {body}");
    assert_eq!(body["status"], "confirmed");

    nodes[1].stop();
    let (status, body, retry_after) = app.book_retry_after("A3", "two-down").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!((body["code"].as_str(), retry_after.as_deref()), (Some("unavailable"), Some("1")), "an outage says when to try again: {body}");
    assert!(body["error"].as_str().unwrap().contains("only 1 of 3 Redis nodes reachable"), "{body}");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings WHERE customer_id = 'two-down'").await, 0);
    let (_, event) = app.get("/events/1").await;
    assert_eq!(event["seats"]["booked"], 2, "A3 stays free");

    nodes[0].restart();
    let (status, body) = app.book("A3", "back-to-two").await;
    assert_eq!(status, StatusCode::OK, "quorum is back: {body}");
}

#[tokio::test]
async fn a_single_redis_lock_that_expires_mid_booking_double_books() {
    let app = spawn_app_with(Options { strategy: "distributed", hold_ms: 400, lock_ttl_ms: 100, ..Options::default() }).await;

    let ((first_status, first), (second_status, second)) = outlive_the_lock(&app).await;

    assert_eq!(first_status, StatusCode::OK, "{first}");
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "double_booked", "{second}");
    assert_eq!(app.double_booking_count().await, 1);
}

#[tokio::test]
async fn a_fenced_lock_refuses_the_holder_whose_lock_expired() {
    let app = spawn_app_with(Options { strategy: "fenced", hold_ms: 400, lock_ttl_ms: 100, ..Options::default() }).await;

    let ((first_status, first), (second_status, second)) = outlive_the_lock(&app).await;

    assert_eq!(first_status, StatusCode::CONFLICT, "{first}");
    assert_eq!(first["reason"], "stale_token", "{first}");
    assert_eq!(first["fencing_token"], 1);
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "confirmed");
    assert_eq!(second["fencing_token"], 2);
    assert_eq!(app.double_booking_count().await, 0);
    let (_, event) = app.get("/events/1").await;
    let a1 = event["seats"]["details"].as_array().unwrap().iter().find(|seat| seat["seat_number"] == "A1").unwrap().clone();
    assert_eq!(a1["booked_by"], "second-holder");
}

#[tokio::test]
async fn redis_down_means_503_and_no_booking_for_redis_strategies() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(Options { redis_url: redis.url(), hold_ms: 10, ..Options::default() }).await;
    app.set_strategy("distributed").await;
    redis.stop();

    let (status, body) = app.book("A1", "during-outage").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("redis is unavailable"), "{body}");

    // The applied strategy cannot change without Redis either: the replica
    // keeps `distributed` and says why.
    let (status, _) = app.post("/admin/strategy", serde_json::json!({"strategy": "pessimistic"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 0);

    redis.restart();
    book_once_recovered(&app, "A1", "after-outage").await;
}

#[tokio::test]
async fn postgres_down_means_503_with_a_clear_message_and_the_replica_recovers() {
    let postgres = PostgresServer::start();
    let app = spawn_app_with(Options { database_url: postgres.url("booking"), hold_ms: 10, ..Options::default() }).await;
    let (status, body) = app.book("A1", "before").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    postgres.stop();

    let (status, body) = app.book("A2", "during").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("database is unavailable"), "{body}");
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_ne!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(app.get("/health").await.0, StatusCode::OK, "the process itself is alive");

    postgres.restart();
    book_once_recovered(&app, "A2", "after").await;
}

/// Books until the backend is back (15 s at most); until then every answer
/// must be a clean 503.
async fn book_once_recovered(app: &TestApp, seat: &str, customer: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.book(seat, customer).await;
        if status == StatusCode::OK {
            assert_eq!(body["status"], "confirmed");
            return;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "only 503 while reconnecting: {body}");
        assert!(std::time::Instant::now() < deadline, "never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
