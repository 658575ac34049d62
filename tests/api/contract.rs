//! The API as a contract: the OpenAPI document and Swagger UI every replica
//! serves, Schemathesis against one replica, the admin token, and the
//! request deadline.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, count, spawn_app, spawn_app_with};

#[path = "../common/schemathesis.rs"]
mod schemathesis;

const TOKEN: &str = "lab-admin-0123456789";

async fn document(address: &str) -> Value {
    let response = reqwest::get(format!("{address}/openapi.json")).await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_openapi_document_describes_every_operation_with_its_answers() {
    let app = spawn_app().await;
    let doc = document(&app.address).await;

    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc, serde_json::to_value(booking_server::http::openapi_document()).unwrap(), "served = built from the code");
    let operations: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |method| format!("{} {path}", method.to_uppercase())))
        .collect();
    for expected in [
        "POST /book",
        "GET /events/{id}",
        "GET /events/{id}/seats",
        "GET /events/{id}/stream",
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /admin/strategy",
        "POST /admin/strategy",
        "POST /admin/reset",
        "GET /admin/double-bookings",
        "GET /admin/stats",
        "GET /admin/cluster",
        "POST /admin/events",
        "DELETE /admin/events/{id}",
        "POST /holds",
        "GET /holds/{id}",
        "DELETE /holds/{id}",
        "POST /holds/{id}/confirm",
    ] {
        assert!(operations.contains(&expected.to_owned()), "{expected} is not documented; documented: {operations:?}");
    }
    assert_eq!(operations.len(), 19, "{operations:?}");
    assert_eq!(doc["paths"]["/events/{id}/stream"]["get"]["responses"]["200"]["content"].as_object().unwrap().keys().next().unwrap(), "text/event-stream");

    let book = &doc["paths"]["/book"]["post"];
    let codes: Vec<&String> = book["responses"].as_object().unwrap().keys().collect();
    for code in ["200", "400", "404", "409", "413", "415", "422", "503", "504"] {
        assert!(codes.iter().any(|c| *c == code), "POST /book does not document {code}: {codes:?}");
    }
    assert!(book["responses"]["200"]["headers"]["X-Instance-Id"].is_object(), "X-Instance-Id is not documented");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["BookRequest"]["properties"]["seat_number"]["pattern"], "^[A-Za-z]{1,4}[0-9]{1,4}$");
    assert_eq!(schemas["BookRequest"]["properties"]["customer_id"]["maxLength"], 255);
    let reasons: Vec<&str> = schemas["Refusal"]["enum"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(reasons, ["seat_taken", "seat_held", "lock_busy", "retries_exhausted", "stale_token", "stale_strategy"]);
    let confirm: Vec<&String> = doc["paths"]["/holds/{id}/confirm"]["post"]["responses"].as_object().unwrap().keys().collect();
    for code in ["200", "400", "404", "409", "410", "422", "503"] {
        assert!(confirm.iter().any(|c| *c == code), "POST /holds/{{id}}/confirm does not document {code}: {confirm:?}");
    }
    let take = &doc["paths"]["/holds"]["post"]["responses"];
    assert!(take["201"]["headers"]["Location"].is_object() && take["429"]["headers"]["Retry-After"].is_object(), "{take}");
    assert_eq!(schemas["InProgressReason"]["enum"], json!(["request_in_progress"]));
    assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    assert_eq!(doc["paths"]["/admin/reset"]["post"]["security"], json!([{ "admin_token": [] }]));
    assert!(doc["paths"]["/book"]["post"].get("security").is_none(), "booking needs no token");

    // The documented example books a seat of the seeded event.
    let example = schemas["BookRequest"]["example"].clone();
    let (status, body) = app.post("/book", example).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "confirmed");
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let page = reqwest::get(format!("{}/docs/", app.address)).await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger-ui"), "not the Swagger UI page");
    let initializer = reqwest::get(format!("{}/docs/swagger-initializer.js", app.address)).await.unwrap().text().await.unwrap();
    assert!(initializer.contains("/openapi.json"), "Swagger UI is not pointed at /openapi.json: {initializer}");
    let bundle = reqwest::get(format!("{}/docs/swagger-ui-bundle.js", app.address)).await.expect("request");
    assert_eq!(bundle.status(), StatusCode::OK, "the UI's script is not embedded");
    assert!(bundle.bytes().await.unwrap().len() > 100_000, "the UI's script is not the real bundle");
}

#[tokio::test]
async fn schemathesis_finds_no_failure_on_one_replica() {
    let app = spawn_app_with(Options { hold_ms: 0, ..Options::default() }).await;
    let run = schemathesis::run(&app.address, None, 25, "one-replica").await;
    assert!(run.passed, "Schemathesis found failures (report in {}):\n{}", run.report_dir.display(), run.output);
    let generated = schemathesis::generated(&run.output);
    assert!(generated >= 300, "only {generated} test cases:\n{}", run.output);
}

#[tokio::test]
async fn with_a_token_admin_wants_it_and_booking_does_not() {
    let app = spawn_app_with(Options { admin_token: TOKEN.to_owned(), ..Options::default() }).await;
    let client = reqwest::Client::new();
    let strategy = format!("{}/admin/strategy", app.address);

    let missing = client.get(&strategy).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert!(missing.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let body: Value = missing.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");

    for wrong in ["Bearer nope", &format!("Bearer {TOKEN}x"), &format!("Basic {TOKEN}"), TOKEN] {
        let answer = client.post(&strategy).header("authorization", wrong).json(&json!({"strategy": "pessimistic"})).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    assert_eq!(app.strategy_with_token(None).await, None, "reading admin needs the token too");
    assert_eq!(app.strategy_with_token(Some(TOKEN)).await.as_deref(), Some("none"), "a refused switch must not switch");

    let right = client.post(&strategy).bearer_auth(TOKEN).json(&json!({"strategy": "pessimistic"})).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert_eq!(app.strategy_with_token(Some(TOKEN)).await.as_deref(), Some("pessimistic"));

    // An unknown admin path says nothing without the token, 404 with it.
    let unknown = format!("{}/admin/nothing-here", app.address);
    assert_eq!(client.get(&unknown).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(client.get(&unknown).bearer_auth(TOKEN).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    let (status, body) = app.book("A1", "alice").await;
    assert_eq!(status, StatusCode::OK, "booking needs no token: {body}");
    let (status, _) = app.get("/events/1").await;
    assert_eq!(status, StatusCode::OK);

    // The lab's own client sends the token it is given.
    let lab = booking_lab::client::LabClient::new(&app.address).unwrap();
    let refused = lab.set_strategy("optimistic").await.expect_err("no token");
    assert!(format!("{refused:#}").contains("401"), "{refused:#}");
    lab.with_admin_token(Some(TOKEN)).unwrap().set_strategy("optimistic").await.expect("switch with the token");
}

#[tokio::test]
async fn schemathesis_with_the_token_finds_no_failure_on_admin() {
    let app = spawn_app_with(Options { hold_ms: 0, admin_token: TOKEN.to_owned(), ..Options::default() }).await;
    let run = schemathesis::run(&app.address, Some(TOKEN), 10, "one-replica-token").await;
    assert!(run.passed, "Schemathesis found failures (report in {}):\n{}", run.report_dir.display(), run.output);
    assert!(count(&app.options, "SELECT count(*) FROM events").await > 1, "with the token, admin operations ran (events created)");
}

#[tokio::test]
async fn a_booking_past_the_deadline_gets_504_and_is_still_written_whole() {
    // The hold (1 s) is far past the deadline (300 ms): the client is
    // answered at the deadline, the booking finishes in its own task.
    let app = spawn_app_with(Options { strategy: "pessimistic", hold_ms: 1000, request_deadline_ms: 300, ..Options::default() }).await;

    let started = Instant::now();
    let (status, body, _) = app.book_with_key("B2", "late-larry", "deadline-key-1").await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("REQUEST_DEADLINE_MS = 300 ms") && message.contains("Idempotency-Key"), "{message}");
    assert!(waited < Duration::from_millis(900), "answered after {waited:?}, not at the deadline");

    // The booking completes whole: one row, the seat marked, the key's answer stored.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body, replayed) = app.book_with_key("B2", "late-larry", "deadline-key-1").await;
        if status == StatusCode::OK && replayed {
            assert_eq!(body["status"], "confirmed", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the booking never completed: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = count(&app.options, "SELECT count(*) FROM bookings b JOIN seats s ON s.id = b.seat_id WHERE s.seat_number = 'B2'").await;
    let marked = count(&app.options, "SELECT count(*) FROM seats WHERE seat_number = 'B2' AND event_id = 1 AND is_booked AND booked_by = 'late-larry'").await;
    assert_eq!((rows, marked), (1, 1), "the booking is not whole");
}
