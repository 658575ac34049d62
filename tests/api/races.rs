//! Ten concurrent bookings of one seat on one replica, per strategy.
//!
//! The hold time (200 ms) is far longer than it takes to send ten requests,
//! so every request reads the seat before any of them writes it: `none` always
//! double-books, and a strategy that holds has no luck to rely on.

use std::collections::BTreeMap;

use crate::helpers::{Options, RedisServer, TestApp, burst, spawn_app_with};

const ROUNDS: usize = 3;

async fn app_with(strategy: &'static str) -> TestApp {
    spawn_app_with(Options { strategy, ..Options::default() }).await
}

/// Exactly one confirmed booking and no double booking, round after round.
async fn assert_holds(strategy: &'static str) {
    assert_holds_on(&app_with(strategy).await, strategy).await;
}

async fn assert_holds_on(app: &TestApp, strategy: &str) {
    for round in 0..ROUNDS {
        app.reset().await;
        let race = burst(&[app], "A1", 10).await;
        assert_eq!(race.errors, 0, "{strategy} round {round}: unexpected answers {race:?}");
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
        assert_eq!(race.errors, 0, "round {round}: {race:?}");
        assert!(race.double_booked >= 5, "round {round}: most requests should double-book: {race:?}");
        // The seat row counts its holders: exactly the first writer is told
        // `confirmed`, every later one `double_booked`.
        assert_eq!(race.confirmed, 1, "round {round}: {race:?}");
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
async fn redlock_holds_over_three_nodes_with_all_up_and_with_one_down() {
    let mut nodes = [RedisServer::start(), RedisServer::start(), RedisServer::start()];
    let options = Options { strategy: "redlock", redlock_urls: nodes.iter().map(RedisServer::url).collect(), ..Options::default() };
    let app = spawn_app_with(options).await;
    assert_holds_on(&app, "redlock, three nodes up").await;
    nodes[2].stop();
    assert_holds_on(&app, "redlock, one node of three down").await;
}

#[tokio::test]
async fn fenced_holds() {
    assert_holds("fenced").await;
}

#[tokio::test]
async fn losers_say_why_they_lost() {
    // Every loser must read the seat while the winner still holds it, or it
    // finds the seat taken instead. A fresh replica opens its pool connections
    // during this first burst, which on a loaded machine can take longer than
    // the usual 200 ms, so these races hold for a second.
    const HOLD_MS: u64 = 1000;
    let optimistic =
        spawn_app_with(Options { strategy: "optimistic", optimistic_max_retries: 0, hold_ms: HOLD_MS, ..Options::default() }).await;
    let race = burst(&[&optimistic], "A1", 10).await;
    assert_eq!(race.confirmed, 1, "{race:?}");
    assert_eq!(race.refusals, BTreeMap::from([("retries_exhausted".to_owned(), 9)]), "no retries left: {race:?}");

    let distributed = spawn_app_with(Options { strategy: "distributed", hold_ms: HOLD_MS, ..Options::default() }).await;
    let race = burst(&[&distributed], "A1", 10).await;
    assert_eq!(race.confirmed, 1, "{race:?}");
    assert_eq!(race.refusals, BTreeMap::from([("lock_busy".to_owned(), 9)]), "the lock was held throughout: {race:?}");

    let waiting = spawn_app_with(Options { strategy: "distributed", lock_wait_ms: 5000, ..Options::default() }).await;
    let race = burst(&[&waiting], "A1", 4).await;
    assert_eq!(race.confirmed, 1, "{race:?}");
    assert_eq!(
        race.refusals,
        BTreeMap::from([("seat_taken".to_owned(), 3)]),
        "waiters get the lock after the winner and find the seat taken: {race:?}"
    );
}

/// `mutex_seats_tracked` as this replica's /metrics has it.
async fn tracked_mutexes(app: &TestApp) -> u64 {
    let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|line| line.starts_with("mutex_seats_tracked")).expect("gauge present");
    line.rsplit(' ').next().unwrap().parse::<f64>().expect("a number") as u64
}

#[tokio::test]
async fn the_mutex_map_forgets_seats_nobody_is_booking() {
    // A 1 s hold: the map is scraped while all twenty bookings hold their seats.
    let app = spawn_app_with(Options { strategy: "mutex", hold_ms: 1000, ..Options::default() }).await;
    let seats: Vec<String> = (1..=10).flat_map(|n| ["A", "B"].map(|row| format!("{row}{n}"))).collect();

    let bookings = futures_util::future::join_all(seats.iter().map(|seat| app.book(seat, "someone")));
    let during = async {
        // The gauge is refreshed by a timer (and on every scrape); wait for all twenty.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(800);
        let mut tracked = tracked_mutexes(&app).await;
        while tracked < 20 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tracked = tracked_mutexes(&app).await;
        }
        tracked
    };
    let (answers, during) = tokio::join!(bookings, during);

    assert!(answers.iter().all(|(status, _)| status.is_success()), "{answers:?}");
    assert_eq!(during, 20, "one entry per seat being booked, during the hold");
    assert_eq!(tracked_mutexes(&app).await, 0, "and none once the bookings are done");
}

/// The agreement check reads Postgres, not the service's answers about
/// itself: a seat left marked booked after its booking row is gone still
/// looks booked once through the API, and the check catches it.
#[tokio::test]
async fn the_agreement_check_catches_a_seat_booked_without_a_booking_row() {
    let app = app_with("pessimistic").await;
    let race = burst(&[&app], "A1", 10).await;
    assert_eq!(race.confirmed, 1, "{race:?}");

    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    sqlx::query("DELETE FROM bookings WHERE status = 'confirmed'").execute(&pool).await.unwrap();

    let through_the_api = booking_lab::client::LabClient::new(&app.address).unwrap().holders(1, "A1").await.unwrap();
    assert_eq!(through_the_api, 1, "the API still shows the seat as booked once");
    let mismatch = race.check_in_postgres(&pool, 1, "A1").await.expect_err("a seat booked without a row must not pass");
    assert!(mismatch.contains("booking rows in Postgres: []"), "{mismatch}");
    pool.close().await;
}
