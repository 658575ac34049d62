use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{count, spawn_app};

#[tokio::test]
async fn booking_a_free_seat_confirms_it() {
    let app = spawn_app().await;

    let (status, body) = app.book("A1", "alice").await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "confirmed");
    assert_eq!(body["customer_id"], "alice");
    assert_eq!(body["seat_number"], "A1");
    assert_eq!(body["strategy"], "none");
    assert_eq!(body["instance"], "replica-a");
    assert!(body["message"].as_str().unwrap().contains("A1"));
    let (_, event) = app.get("/events/1").await;
    let a1 = event["seats"]["details"].as_array().unwrap().iter().find(|seat| seat["seat_number"] == "A1").unwrap().clone();
    assert_eq!(a1["is_booked"], true);
    assert_eq!(a1["booked_by"], "alice");
}

#[tokio::test]
async fn booking_a_taken_seat_is_a_conflict_that_says_so() {
    let app = spawn_app().await;
    app.book("A1", "alice").await;

    let (status, body) = app.book("A1", "bob").await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["status"], "failed");
    assert_eq!(body["reason"], "seat_taken");
    assert!(body["message"].as_str().unwrap().contains("already booked"));
}

#[tokio::test]
async fn unknown_seats_and_events_are_not_found_and_write_nothing() {
    let app = spawn_app().await;

    for strategy in ["none", "pessimistic", "optimistic", "distributed", "redlock", "fenced", "mutex"] {
        app.set_strategy(strategy).await;
        let (status, body) = app.post("/book", json!({"event_id": 1, "seat_number": "Z99", "customer_id": "c"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{strategy}: {body}");
        assert_eq!(body["error"], "seat 'Z99' does not exist in event 1", "{strategy}");
        let (status, body) = app.post("/book", json!({"event_id": 42, "seat_number": "A1", "customer_id": "c"})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{strategy}: {body}");
        assert_eq!(body["error"], "event 42 does not exist", "{strategy}");
    }
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 0);
}

#[tokio::test]
async fn bad_booking_requests_are_4xx_naming_the_field_and_never_500() {
    let app = spawn_app().await;
    let long_customer = "x".repeat(256);
    let max_customer = "x".repeat(255);

    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("not json", "{".into(), StatusCode::BAD_REQUEST, "EOF"),
        ("a JSON array", "[]".into(), StatusCode::UNPROCESSABLE_ENTITY, "expected struct"),
        ("missing event_id", json!({"seat_number": "A1", "customer_id": "c"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "event_id"),
        ("missing seat_number", json!({"event_id": 1, "customer_id": "c"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "seat_number"),
        ("missing customer_id", json!({"event_id": 1, "seat_number": "A1"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "customer_id"),
        ("event_id as string", json!({"event_id": "one", "seat_number": "A1", "customer_id": "c"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "event_id"),
        ("event_id too large", r#"{"event_id": 1e40, "seat_number": "A1", "customer_id": "c"}"#.into(), StatusCode::UNPROCESSABLE_ENTITY, "event_id"),
        ("event_id zero", json!({"event_id": 0, "seat_number": "A1", "customer_id": "c"}).to_string(), StatusCode::BAD_REQUEST, "event_id"),
        ("event_id negative", json!({"event_id": -5, "seat_number": "A1", "customer_id": "c"}).to_string(), StatusCode::BAD_REQUEST, "event_id"),
        ("seat_number null", json!({"event_id": 1, "seat_number": null, "customer_id": "c"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "seat_number"),
        ("seat_number empty", json!({"event_id": 1, "seat_number": "", "customer_id": "c"}).to_string(), StatusCode::BAD_REQUEST, "seat_number"),
        ("seat_number injection", json!({"event_id": 1, "seat_number": "A1'; DROP TABLE seats;--", "customer_id": "c"}).to_string(), StatusCode::BAD_REQUEST, "seat_number"),
        ("seat_number with a glob", json!({"event_id": 1, "seat_number": "A*", "customer_id": "c"}).to_string(), StatusCode::BAD_REQUEST, "seat_number"),
        ("customer_id empty", json!({"event_id": 1, "seat_number": "A1", "customer_id": ""}).to_string(), StatusCode::BAD_REQUEST, "customer_id"),
        ("customer_id blank", json!({"event_id": 1, "seat_number": "A1", "customer_id": "   "}).to_string(), StatusCode::BAD_REQUEST, "customer_id"),
        ("customer_id too long", json!({"event_id": 1, "seat_number": "A1", "customer_id": long_customer}).to_string(), StatusCode::BAD_REQUEST, "customer_id"),
        ("customer_id a number", json!({"event_id": 1, "seat_number": "A1", "customer_id": 7}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "customer_id"),
        ("customer_id with NUL", json!({"event_id": 1, "seat_number": "A1", "customer_id": "a\u{0}b"}).to_string(), StatusCode::BAD_REQUEST, "customer_id"),
    ];

    for (case, body, expected, field) in cases {
        let (status, response) = app.post_raw("/book", "application/json", body).await;
        assert_eq!(status, expected, "{case}: {response}");
        let error = response["error"].as_str().unwrap_or_else(|| panic!("{case}: no error message in {response}"));
        assert!(error.contains(field), "{case}: '{error}' should name {field}");
    }
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 0);

    let (status, body) = app.post("/book", json!({"event_id": 1, "seat_number": "A1", "customer_id": max_customer})).await;
    assert_eq!(status, StatusCode::OK, "255 characters is allowed: {body}");
}

#[tokio::test]
async fn wrong_content_type_and_oversized_bodies_are_rejected() {
    let app = spawn_app().await;

    let (status, body) = app.post_raw("/book", "text/plain", r#"{"event_id":1,"seat_number":"A1","customer_id":"c"}"#).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Content-Type"));

    let huge = format!(r#"{{"event_id":1,"seat_number":"A1","customer_id":"{}"}}"#, "x".repeat(100_000));
    let (status, _) = app.post_raw("/book", "application/json", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn every_attempt_is_recorded_so_stats_add_up() {
    let app = spawn_app().await;
    app.book("A1", "alice").await;
    app.book("A1", "bob").await;
    app.book("A2", "carol").await;

    let (status, stats) = app.get("/admin/stats").await;

    assert_eq!(status, StatusCode::OK);
    let totals = &stats["totals"];
    assert_eq!(
        [&totals["confirmed"], &totals["failed"], &totals["double_booked"], &totals["total"]],
        [&json!(2), &json!(1), &json!(0), &json!(3)]
    );
    assert_eq!(totals["reasons"], json!({"seat_taken": 1}));
    assert_eq!(stats["by_strategy"][0]["strategy"], "none");
    assert_eq!(stats["by_strategy"][0]["total"], 3);
    assert_eq!(stats["current_strategy"], "none");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings WHERE reason = 'seat_taken'").await, 1);
}

#[tokio::test]
async fn optimistic_reports_attempts_and_fenced_its_token() {
    let app = spawn_app().await;

    app.set_strategy("optimistic").await;
    let (_, optimistic) = app.book("A1", "alice").await;
    app.set_strategy("fenced").await;
    let (_, first) = app.book("A2", "bob").await;
    let (_, second) = app.book("A3", "carol").await;
    let (_, again) = app.book("A2", "dave").await;

    assert_eq!(optimistic["status"], "confirmed");
    assert_eq!(optimistic["attempts"], 1);
    assert_eq!(first["fencing_token"], 1);
    assert_eq!(second["fencing_token"], 1, "tokens count per seat");
    assert_eq!(again["reason"], "seat_taken");
    assert_eq!(again["fencing_token"], 2, "every grant mints a newer token");
}
