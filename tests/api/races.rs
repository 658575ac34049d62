//! Ten concurrent bookings of one seat on one replica, per strategy.
//!
//! The hold time (200 ms) is far longer than it takes to send ten requests,
//! so every request reads the seat before any of them writes it: `none` always
//! double-books, and a strategy that holds has no luck to rely on.

use crate::helpers::{Options, TestApp, burst, spawn_app_with};

const ROUNDS: usize = 3;

async fn app_with(strategy: &'static str) -> TestApp {
    spawn_app_with(Options { strategy, ..Options::default() }).await
}

/// Exactly one confirmed booking and no double booking, round after round.
async fn assert_holds(strategy: &'static str) {
    let app = app_with(strategy).await;
    for round in 0..ROUNDS {
        app.reset().await;
        let race = burst(&[&app], "A1", 10).await;
        assert!(race.other.is_empty(), "{strategy} round {round}: unexpected answers {:?}", race.other);
        assert_eq!(race.confirmed, 1, "{strategy} round {round}: {race:?}");
        assert_eq!(race.double_booked, 0, "{strategy} round {round}: {race:?}");
        assert_eq!(race.failed, 9, "{strategy} round {round}: {race:?}");
        assert_eq!(app.double_booking_count().await, 0, "{strategy} round {round}");
    }
}

#[tokio::test]
async fn none_double_books_under_concurrency() {
    let app = app_with("none").await;
    for round in 0..ROUNDS {
        app.reset().await;
        let race = burst(&[&app], "A1", 10).await;
        assert!(race.other.is_empty(), "round {round}: {:?}", race.other);
        assert!(race.double_booked >= 5, "round {round}: most requests should double-book: {race:?}");
        assert_eq!(app.double_booking_count().await, 1, "round {round}");
    }
}

#[tokio::test]
async fn mutex_holds_on_one_replica() {
    assert_holds("mutex").await;
}

#[tokio::test]
async fn pessimistic_holds() {
    assert_holds("pessimistic").await;
}

#[tokio::test]
async fn optimistic_holds() {
    assert_holds("optimistic").await;
}

#[tokio::test]
async fn distributed_holds() {
    assert_holds("distributed").await;
}

#[tokio::test]
async fn redlock_holds() {
    assert_holds("redlock").await;
}

#[tokio::test]
async fn fenced_holds() {
    assert_holds("fenced").await;
}

#[tokio::test]
async fn losers_say_why_they_lost() {
    let optimistic = spawn_app_with(Options { strategy: "optimistic", optimistic_max_retries: 0, ..Options::default() }).await;
    let race = burst(&[&optimistic], "A1", 10).await;
    let reasons: Vec<_> = race.bodies.iter().filter_map(|body| body["reason"].as_str()).collect();
    assert!(reasons.iter().all(|reason| *reason == "retries_exhausted"), "no retries left: {reasons:?}");
    assert_eq!(race.confirmed, 1);

    let distributed = app_with("distributed").await;
    let race = burst(&[&distributed], "A1", 10).await;
    let reasons: Vec<_> = race.bodies.iter().filter_map(|body| body["reason"].as_str()).collect();
    assert!(reasons.iter().all(|reason| *reason == "lock_busy"), "lock held throughout: {reasons:?}");

    let waiting = spawn_app_with(Options { strategy: "distributed", lock_wait_ms: 5000, ..Options::default() }).await;
    let race = burst(&[&waiting], "A1", 4).await;
    let reasons: Vec<_> = race.bodies.iter().filter_map(|body| body["reason"].as_str()).collect();
    assert_eq!(reasons, ["seat_taken"; 3], "waiters get the lock after the winner and find the seat taken");
}

#[tokio::test]
async fn the_mutex_map_forgets_seats_nobody_is_booking() {
    let app = app_with("mutex").await;
    let seats: Vec<String> = (1..=10).flat_map(|n| ["A", "B"].map(|row| format!("{row}{n}"))).collect();

    let bookings = seats.iter().map(|seat| app.book(seat, "someone"));
    futures_util::future::join_all(bookings).await;

    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let tracked = metrics.lines().find(|line| line.starts_with("mutex_seats_tracked")).expect("gauge present");
    assert!(tracked.ends_with(" 0"), "{tracked}");
}
