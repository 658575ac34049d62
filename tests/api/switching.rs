//! Switching is a race too: the barrier that no booking can straddle, and the
//! epoch that fences off a replica which slept through it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, RedisServer, TestApp, count, spawn_app_with};

async fn pair(options: Options) -> (TestApp, TestApp) {
    let first = spawn_app_with(Options { instance_id: "replica-a".into(), ..options }).await;
    let second = first.sibling("replica-b").await;
    (first, second)
}

async fn seat(app: &TestApp, number: &str) -> Value {
    let (_, seats) = app.get("/events/1/seats").await;
    seats["seats"].as_array().unwrap().iter().find(|seat| seat["seat_number"] == number).cloned().unwrap()
}

#[tokio::test]
async fn a_switch_waits_for_bookings_in_flight_and_holds_new_ones_until_it_is_done() {
    // A 300 ms hold: the switch lands in the middle of the first booking.
    let (first, second) = pair(Options { strategy: "none", hold_ms: 300, ..Options::default() }).await;

    let in_flight = second.book("A1", "in-flight");
    let switch = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let answer = first.set_strategy("pessimistic").await;
        (answer, started.elapsed())
    };
    let arriving = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.book("A2", "arrived-during-switch").await
    };
    let ((in_flight_status, in_flight), (switch, took), (arriving_status, arriving)) = tokio::join!(in_flight, switch, arriving);

    assert_eq!(in_flight_status, StatusCode::OK, "the booking in flight finishes, under its own strategy: {in_flight}");
    assert_eq!(in_flight["strategy"], "none");
    assert_eq!(arriving_status, StatusCode::OK, "{arriving}");
    assert_eq!(arriving["strategy"], "pessimistic", "a booking that arrives during the switch runs under the new strategy");

    assert_eq!(switch["switched"], serde_json::json!(["replica-a", "replica-b"]), "{switch}");
    assert_eq!(switch["lagging"], serde_json::json!([]), "{switch}");
    assert!(took >= Duration::from_millis(200), "the switch waited for the 300 ms booking in flight: {took:?}");
    assert!(switch["pause"]["paused_requests"].as_u64().unwrap() >= 1, "{switch}");
    // The arriving booking waited from 100 ms until the in-flight one ended at 300 ms.
    assert!(switch["pause"]["p99_ms"].as_f64().unwrap() >= 150.0, "{switch}");
    assert!(switch["message"].as_str().unwrap().contains("none -> pessimistic"), "{switch}");
}

#[tokio::test]
async fn a_reset_waits_for_bookings_in_flight_so_none_lands_after_it() {
    let (first, second) = pair(Options { strategy: "none", hold_ms: 300, ..Options::default() }).await;

    let in_flight = second.book("A1", "in-flight");
    let reset = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.post("/admin/reset?event_id=1", serde_json::json!({})).await
    };
    let ((status, booking), (reset_status, reset)) = tokio::join!(in_flight, reset);

    assert_eq!(status, StatusCode::OK, "{booking}");
    assert_eq!(reset_status, StatusCode::OK, "{reset}");
    assert_eq!(reset["available_seats"], 100, "{reset}");
    // Before the barrier, the booking in flight wrote A1 after the reset had freed it.
    assert_eq!(seat(&first, "A1").await["is_booked"], false);
    assert_eq!(count(&first.options, "SELECT count(*) FROM bookings").await, 0);
}

/// The replica whose pub/sub connection was opened last: `second`'s listener.
async fn kill_newest_subscriber(redis: &RedisServer) {
    let list: String = redis::from_redis_value(redis.command(&["CLIENT", "LIST", "TYPE", "pubsub"]).await).expect("CLIENT LIST is text");
    let newest = list
        .lines()
        .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .filter_map(|id| id.parse::<u64>().ok())
        .max()
        .expect("two subscribers");
    redis.command(&["CLIENT", "KILL", "ID", &newest.to_string()]).await;
}

#[tokio::test]
async fn a_replica_deaf_to_the_switch_cannot_book_under_the_old_strategy() {
    let redis = RedisServer::start();
    // The booking on the deaf replica holds for 1.2 s; the switch gives up
    // waiting for it after 300 ms and goes ahead without it.
    let options = Options { redis_url: redis.url(), strategy: "none", hold_ms: 1200, switch_timeout_ms: 300, ..Options::default() };
    let (first, second) = pair(options).await;

    let sleeper = second.book("A1", "sleeper");
    let rest = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        kill_newest_subscriber(&redis).await;
        // The deaf replica reconnects 500 ms later: it misses `prepare`.
        let switch = first.set_strategy("pessimistic").await;
        let winner = first.book("A1", "winner").await;
        (switch, winner)
    };
    let ((sleeper_status, sleeper), (switch, (winner_status, winner))) = tokio::join!(sleeper, rest);

    assert_eq!(switch["lagging"], serde_json::json!(["replica-b"]), "{switch}");
    assert!(switch["message"].as_str().unwrap().contains("replica-b did not acknowledge"), "{switch}");
    assert_eq!(winner_status, StatusCode::OK, "{winner}");
    assert_eq!(winner["status"], "confirmed", "{winner}");

    assert_eq!(sleeper_status, StatusCode::CONFLICT, "the old-epoch write must be refused: {sleeper}");
    assert_eq!(sleeper["reason"], "stale_strategy", "{sleeper}");
    assert!(sleeper["message"].as_str().unwrap().contains("switched to pessimistic"), "{sleeper}");
    let a1 = seat(&first, "A1").await;
    assert_eq!(a1["booked_by"], "winner", "{a1}");
    assert_eq!(first.double_booking_count().await, 0);
    assert_eq!(count(&first.options, "SELECT count(*) FROM bookings WHERE customer_id = 'sleeper' AND status <> 'failed'").await, 0);

    // Refused once, the replica has caught up: its next booking runs under the new strategy.
    let (status, next) = second.book("A2", "after-catch-up").await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["strategy"], "pessimistic", "{next}");
}

#[tokio::test]
async fn two_switches_at_once_run_one_after_the_other() {
    let (first, second) = pair(Options { strategy: "none", hold_ms: 10, ..Options::default() }).await;
    let (a, b) = tokio::join!(first.set_strategy("optimistic"), second.set_strategy("fenced"));
    let versions = [a["version"].as_u64().unwrap(), b["version"].as_u64().unwrap()];
    assert_eq!(versions.iter().max().unwrap() - versions.iter().min().unwrap(), 1, "one epoch each: {a} {b}");
    let last = if versions[0] > versions[1] { "optimistic" } else { "fenced" };
    first.wait_for_strategy(last).await;
    second.wait_for_strategy(last).await;
}

#[tokio::test]
async fn the_epoch_lives_in_postgres_and_every_switch_and_reset_starts_a_new_one() {
    let app = spawn_app_with(Options { strategy: "none", ..Options::default() }).await;
    let epoch = || count(&app.options, "SELECT epoch FROM strategy_epoch");
    let before = epoch().await;
    let answer = app.set_strategy("redlock").await;
    assert_eq!(answer["version"].as_i64().unwrap(), before + 1);
    app.reset().await;
    assert_eq!(epoch().await, before + 2);
    assert_eq!(count(&app.options, "SELECT count(*) FROM strategy_epoch WHERE name = 'redlock'").await, 1, "a reset keeps the strategy");
}
