//! Holds: take one, confirm it into a booking once, release it, let it
//! expire; the per-customer cap and the TTL range; and the race on taking a
//! hold, per strategy (the hold time, 200 ms, puts every request's read
//! before any write).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, spawn_app_with};

async fn app_with(strategy: &'static str) -> TestApp {
    spawn_app_with(Options { strategy, ..Options::default() }).await
}

/// `POST /holds`: status, body, and the Location and Retry-After headers.
async fn hold(app: &TestApp, seat: &str, customer: &str, ttl_ms: u64) -> (StatusCode, Value, Option<String>, Option<u64>) {
    let response = app
        .client
        .post(format!("{}/holds", app.address))
        .json(&json!({ "event_id": 1, "seat_number": seat, "customer_id": customer, "ttl_ms": ttl_ms }))
        .send()
        .await
        .expect("request failed");
    let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let (location, retry_after) = (header("location"), header("retry-after").and_then(|value| value.parse().ok()));
    let status = response.status();
    (status, response.json().await.expect("a JSON body"), location, retry_after)
}

/// `POST /holds/{id}/confirm`, with a key if given: status, body, replayed.
async fn confirm(app: &TestApp, hold_id: i64, key: Option<&str>) -> (StatusCode, Value, bool) {
    let mut request = app.client.post(format!("{}/holds/{hold_id}/confirm", app.address));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.expect("request failed");
    let replayed = response.headers().get("idempotent-replayed").is_some_and(|value| value == "true");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"), replayed)
}

fn hold_id(body: &Value) -> i64 {
    body["hold_id"].as_i64().unwrap_or_else(|| panic!("no hold_id in {body}"))
}

async fn seat(app: &TestApp, seat: &str) -> Value {
    let (_, event) = app.get("/events/1").await;
    event["seats"]["details"].as_array().expect("seats").iter().find(|s| s["seat_number"] == seat).expect("the seat").clone()
}

/// Confirmed bookings of a seat, by customer, read in Postgres itself.
async fn owners_in_postgres(app: &TestApp, seat: &str) -> Vec<String> {
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.expect("the database");
    let owners = sqlx::query_scalar(
        "SELECT b.customer_id FROM bookings b JOIN seats s ON s.id = b.seat_id
         WHERE s.event_id = 1 AND s.seat_number = $1 AND b.status IN ('confirmed', 'double_booked') ORDER BY b.id",
    )
    .bind(seat)
    .fetch_all(&pool)
    .await
    .expect("bookings");
    pool.close().await;
    owners
}

#[tokio::test]
async fn a_hold_keeps_the_seat_from_everyone_else_and_confirming_it_twice_gives_one_booking() {
    let app = app_with("pessimistic").await;
    let (status, held, location, _) = hold(&app, "A1", "alice", 60_000).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    let id = hold_id(&held);
    assert_eq!(location.as_deref(), Some(format!("/holds/{id}").as_str()));
    assert_eq!(held["status"], "held");
    assert_eq!(held["hold_count"], 1);
    assert!(held["remaining_ms"].as_i64().unwrap() > 50_000, "{held}");

    // Nobody else gets the seat, by hold or by booking; alice gets her hold back.
    let (status, refused, ..) = hold(&app, "A1", "bob", 60_000).await;
    assert_eq!((status, refused["reason"].as_str()), (StatusCode::CONFLICT, Some("seat_held")), "{refused}");
    let (status, refused) = app.book("A1", "bob").await;
    assert_eq!((status, refused["reason"].as_str()), (StatusCode::CONFLICT, Some("seat_held")), "{refused}");
    let (status, again, ..) = hold(&app, "A1", "alice", 60_000).await;
    assert_eq!((status, hold_id(&again)), (StatusCode::OK, id), "{again}");
    let shown = seat(&app, "A1").await;
    assert_eq!((shown["is_held"].as_bool(), shown["held_by"].as_str(), shown["hold_id"].as_i64()), (Some(true), Some("alice"), Some(id)));

    let (status, booked, replayed) = confirm(&app, id, Some("pay-alice-A1")).await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    assert_eq!((booked["status"].as_str(), booked["customer_id"].as_str(), replayed), (Some("confirmed"), Some("alice"), false));
    let booking_id = booked["booking_id"].as_i64().unwrap();
    // The same key replays the stored answer; a confirm without a key finds
    // the hold confirmed and answers with the same booking.
    let (status, again, replayed) = confirm(&app, id, Some("pay-alice-A1")).await;
    assert_eq!((status, again["booking_id"].as_i64(), replayed), (StatusCode::OK, Some(booking_id), true), "{again}");
    let (status, again, _) = confirm(&app, id, None).await;
    assert_eq!((status, again["booking_id"].as_i64()), (StatusCode::OK, Some(booking_id)), "{again}");
    assert_eq!(owners_in_postgres(&app, "A1").await, ["alice"]);

    let (status, shown) = app.get(&format!("/holds/{id}")).await;
    assert_eq!((status, shown["status"].as_str(), shown["booking_id"].as_i64()), (StatusCode::OK, Some("confirmed"), Some(booking_id)));
    let (status, refused) = app.delete(&format!("/holds/{id}")).await;
    assert_eq!((status, refused["reason"].as_str()), (StatusCode::CONFLICT, Some("hold_confirmed")), "{refused}");
    // The same key on another hold is another request.
    let (_, other, ..) = hold(&app, "A2", "alice", 60_000).await;
    let (status, refused, _) = confirm(&app, hold_id(&other), Some("pay-alice-A1")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
}

/// The lease lesson: alice's payment lands after her hold expired, and bob
/// has taken the seat meanwhile. Postgres' clock, read in the confirm's
/// transaction, refuses her; bob's confirm books it. The same under `none`:
/// the confirm is one transaction whatever the strategy.
#[tokio::test]
async fn a_payment_that_lands_after_the_hold_expired_is_refused_and_the_new_holder_books() {
    for strategy in ["pessimistic", "none"] {
        let app = app_with(strategy).await;
        let (status, alice, ..) = hold(&app, "B1", "alice", 300).await;
        assert_eq!(status, StatusCode::CREATED, "{strategy}: {alice}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (status, bob, ..) = hold(&app, "B1", "bob", 60_000).await;
        assert_eq!(status, StatusCode::CREATED, "{strategy}: an expired hold frees its seat: {bob}");

        let (status, refused, _) = confirm(&app, hold_id(&alice), None).await;
        assert_eq!((status, refused["reason"].as_str()), (StatusCode::GONE, Some("hold_expired")), "{strategy}: {refused}");
        assert!(refused["message"].as_str().unwrap().contains("the database's clock"), "{refused}");
        let (status, booked, _) = confirm(&app, hold_id(&bob), None).await;
        assert_eq!((status, booked["customer_id"].as_str()), (StatusCode::OK, Some("bob")), "{strategy}: {booked}");
        assert_eq!(owners_in_postgres(&app, "B1").await, ["bob"], "{strategy}");
        // Retrying alice's late payment changes nothing.
        let (status, ..) = confirm(&app, hold_id(&alice), Some("alice-late")).await;
        assert_eq!(status, StatusCode::GONE, "{strategy}");
        assert_eq!(owners_in_postgres(&app, "B1").await, ["bob"], "{strategy}");
    }
}

#[tokio::test]
async fn an_expired_hold_is_swept_without_any_request_and_its_seat_shows_free() {
    let app = app_with("optimistic").await;
    let (_, held, ..) = hold(&app, "C1", "carol", 200).await;
    let id = hold_id(&held);
    assert_eq!(seat(&app, "C1").await["is_held"], true);
    // The sweep runs every second: within three, the hold is written down.
    let mut swept = Value::Null;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        swept = app.get(&format!("/holds/{id}")).await.1;
        if swept["ended_at"].is_string() {
            break;
        }
    }
    assert_eq!((swept["status"].as_str(), swept["ended_at"].is_string()), (Some("expired"), true), "{swept}");
    let shown = seat(&app, "C1").await;
    assert_eq!((shown["is_held"].as_bool(), shown.get("held_by")), (Some(false), None), "{shown}");
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    let hold_column: Option<i64> = sqlx::query_scalar("SELECT hold_id FROM seats WHERE event_id = 1 AND seat_number = 'C1'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(hold_column, None, "the sweep frees the seat row");
}

#[tokio::test]
async fn releasing_frees_the_seat_at_once_and_is_idempotent() {
    let app = app_with("distributed").await;
    let (_, held, ..) = hold(&app, "D1", "dave", 60_000).await;
    let id = hold_id(&held);
    for _ in 0..2 {
        let (status, released) = app.delete(&format!("/holds/{id}")).await;
        assert_eq!((status, released["status"].as_str()), (StatusCode::OK, Some("released")), "{released}");
    }
    // Released is gone: reading it says so, and what it was.
    let (status, gone) = app.get(&format!("/holds/{id}")).await;
    assert_eq!((status, gone["code"].as_str(), gone["hold"]["status"].as_str()), (StatusCode::GONE, Some("hold_released"), Some("released")), "{gone}");
    let (status, erin, ..) = hold(&app, "D1", "erin", 60_000).await;
    assert_eq!(status, StatusCode::CREATED, "{erin}");
    let (status, refused, _) = confirm(&app, id, None).await;
    assert_eq!((status, refused["reason"].as_str()), (StatusCode::GONE, Some("hold_released")), "{refused}");

    // Releasing a hold that already ran out writes it down as expired (by
    // the database's clock) and clears its seat, sweep or no sweep.
    let (_, short, ..) = hold(&app, "D2", "dave", 200).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, released) = app.delete(&format!("/holds/{}", hold_id(&short))).await;
    assert_eq!((status, released["code"].as_str(), released["hold"]["status"].as_str()), (StatusCode::GONE, Some("hold_expired"), Some("expired")), "{released}");
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    let seat_hold: Option<i64> = sqlx::query_scalar("SELECT hold_id FROM seats WHERE event_id = 1 AND seat_number = 'D2'").fetch_one(&pool).await.unwrap();
    assert_eq!(seat_hold, None);
    pool.close().await;
}

#[tokio::test]
async fn a_customer_past_the_cap_is_told_when_to_retry() {
    let app = app_with("pessimistic").await;
    let mut first = 0;
    for seat in ["E1", "E2", "E3", "E4"] {
        let (status, held, ..) = hold(&app, seat, "frank", 60_000).await;
        assert_eq!(status, StatusCode::CREATED, "{held}");
        if first == 0 {
            first = hold_id(&held);
        }
    }
    let (status, refused, _, retry_after) = hold(&app, "E5", "frank", 60_000).await;
    assert_eq!((status, refused["reason"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_holds")), "{refused}");
    assert!(retry_after.is_some_and(|seconds| (50..=60).contains(&seconds)), "Retry-After {retry_after:?}");
    assert!(refused["message"].as_str().unwrap().contains("SEAT_HOLDS_PER_CUSTOMER"), "{refused}");
    // Another customer is not limited by frank's holds; frank is, until he lets one go.
    assert_eq!(hold(&app, "E5", "grace", 60_000).await.0, StatusCode::CREATED);
    app.delete(&format!("/holds/{first}")).await;
    assert_eq!(hold(&app, "E6", "frank", 60_000).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn bad_hold_requests_are_refused_naming_what_was_wrong() {
    let app = app_with("none").await;
    for (body, status, says) in [
        (json!({"event_id": 1, "seat_number": "A1", "customer_id": "x", "ttl_ms": 50}), StatusCode::BAD_REQUEST, "ttl_ms must be between 100 and 900000"),
        (json!({"event_id": 1, "seat_number": "A1", "customer_id": "x", "ttl_ms": 900_001}), StatusCode::BAD_REQUEST, "ttl_ms"),
        (json!({"event_id": 1, "seat_number": "1A", "customer_id": "x"}), StatusCode::BAD_REQUEST, "seat_number"),
        (json!({"event_id": 0, "seat_number": "A1", "customer_id": "x"}), StatusCode::BAD_REQUEST, "event_id"),
        (json!({"event_id": 1, "seat_number": "A1", "customer_id": " "}), StatusCode::BAD_REQUEST, "customer_id"),
        (json!({"event_id": 1, "seat_number": "Z99", "customer_id": "x"}), StatusCode::NOT_FOUND, "seat 'Z99' does not exist"),
        (json!({"event_id": 1, "seat_number": "A1"}), StatusCode::UNPROCESSABLE_ENTITY, "customer_id"),
    ] {
        let (got, answer) = app.post("/holds", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(answer.to_string().contains(says), "{body} → {answer} should say {says:?}");
    }
    assert_eq!(app.get("/holds/987654").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/holds/abc").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.delete("/holds/987654").await.0, StatusCode::NOT_FOUND);
    assert_eq!(confirm(&app, 987_654, None).await.0, StatusCode::NOT_FOUND);
}

/// Ten customers ask to hold one seat at once. Every strategy that holds
/// grants one hold; `none` grants several, and says so (`hold_count`).
/// Either way the confirms book the seat once: the confirm's transaction
/// checks that the hold still keeps the seat.
#[tokio::test]
async fn only_the_safe_strategies_give_one_seat_one_hold_and_no_strategy_books_it_twice() {
    for strategy in ["none", "pessimistic", "optimistic", "distributed", "fenced"] {
        let app = app_with(strategy).await;
        let fans: Vec<String> = (0..10).map(|n| format!("fan-{n}")).collect();
        let asks = fans.iter().map(|fan| hold(&app, "F1", fan, 60_000));
        let answers = futures_util::future::join_all(asks).await;
        let granted: Vec<&Value> = answers.iter().filter(|(status, ..)| *status == StatusCode::CREATED).map(|(_, body, ..)| body).collect();
        let refused = answers.iter().filter(|(status, ..)| *status == StatusCode::CONFLICT).count();
        assert_eq!(granted.len() + refused, 10, "{strategy}: {answers:?}");
        if strategy == "none" {
            assert!(granted.len() >= 5, "{strategy}: most asks should get a hold: {answers:?}");
            assert!(granted.iter().any(|body| body["hold_count"].as_i64() > Some(1)), "{strategy}: {granted:?}");
        } else {
            assert_eq!(granted.len(), 1, "{strategy}: {answers:?}");
        }
        let confirms = futures_util::future::join_all(granted.iter().map(|body| confirm(&app, hold_id(body), None))).await;
        let booked = confirms.iter().filter(|(status, ..)| *status == StatusCode::OK).count();
        assert_eq!(booked, 1, "{strategy}: {confirms:?}");
        for (status, body, _) in confirms.iter().filter(|(status, ..)| *status != StatusCode::OK) {
            assert_eq!((*status, body["reason"].as_str()), (StatusCode::CONFLICT, Some("hold_lost")), "{strategy}: {body}");
        }
        assert_eq!(owners_in_postgres(&app, "F1").await.len(), 1, "{strategy}");
        // The audit agrees: overlapping holds under `none` only, and expected there.
        let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
        let findings = booking_lab::audit::check(&pool, Some(1)).await.unwrap();
        assert!(findings.iter().all(|finding| finding.expected), "{strategy}: {findings:#?}");
        let overlapping = findings.iter().filter(|finding| finding.kind == booking_lab::audit::Kind::OverlappingHolds).count();
        assert_eq!(overlapping > 0, strategy == "none", "{strategy}: {findings:#?}");
        pool.close().await;
    }
}
