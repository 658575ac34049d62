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
    assert_eq!(doc, serde_json::to_value(booking_server::http::openapi_document(false)).unwrap(), "served = built from the code");
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
        "GET /events/{id}/seats/{seat_number}",
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
    assert_eq!(operations.len(), 20, "{operations:?}");
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
    // Without ADMIN_TOKEN, admin is open, and the document says so.
    assert!(doc["paths"]["/admin/reset"]["post"].get("security").is_none(), "{}", doc["paths"]["/admin/reset"]);
    assert!(doc["paths"]["/admin/reset"]["post"]["responses"].get("401").is_none());

    // The documented example books a seat of the seeded event.
    let example = schemas["BookRequest"]["example"].clone();
    let (status, body) = app.post("/book", example).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "confirmed");
}

/// `code` in an error body as a program would read it.
async fn answer(response: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn every_error_carries_a_stable_code_that_the_document_and_docs_list() {
    let app = spawn_app_with(Options { strategy: "pessimistic", ..Options::default() }).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", app.address);
    let book = |seat: &str, customer: &str| json!({"event_id": 1, "seat_number": seat, "customer_id": customer});

    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        ("a bad seat number", http.post(url("/book")).json(&book("A-1", "alice")), StatusCode::BAD_REQUEST, "invalid_input"),
        ("JSON that is not JSON", http.post(url("/book")).header("content-type", "application/json").body("{"), StatusCode::BAD_REQUEST, "malformed_request"),
        ("a missing field", http.post(url("/book")).json(&json!({"event_id": 1})), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("no JSON content type", http.post(url("/book")).body("{}"), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("an unknown event", http.get(url("/events/999")), StatusCode::NOT_FOUND, "not_found"),
        ("an unknown route", http.get(url("/nowhere")), StatusCode::NOT_FOUND, "not_found"),
        ("a method the route does not take", http.put(url("/book")), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        ("deleting the seed event", http.delete(url("/admin/events/1")), StatusCode::CONFLICT, "seed_event"),
        ("a bad query parameter", http.get(url("/admin/stats?event_id=0")), StatusCode::BAD_REQUEST, "invalid_input"),
    ];
    let mut seen = Vec::new();
    for (what, request, status, code) in cases {
        let (got, headers, body) = answer(request.send().await.unwrap()).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{what}: {body}");
        assert_eq!(body["status"], "error", "{what}: {body}");
        assert!(!body["error"].as_str().unwrap_or_default().is_empty(), "{what}: the message stays: {body}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(headers["allow"], "POST", "{what}: the Allow header lists what the route takes");
        }
        seen.push(code.to_owned());
    }

    // A key reused for another request, and a refusal: codes of their own,
    // beside the fields clients read today.
    let keyed = |seat: &str| http.post(url("/book")).header("idempotency-key", "contract-key").json(&book(seat, "alice"));
    assert_eq!(keyed("A1").send().await.unwrap().status(), StatusCode::OK);
    let (status, _, body) = answer(keyed("A2").send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused")), "{body}");
    let (status, _, body) = answer(http.post(url("/book")).json(&book("A1", "bob")).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str(), body["reason"].as_str()), (StatusCode::CONFLICT, Some("seat_taken"), Some("seat_taken")), "{body}");
    seen.push("idempotency_key_reused".to_owned());

    // Created is 201 with where to find it.
    let created = http.post(url("/admin/events")).json(&json!({"name": "located", "rows": 1, "seats_per_row": 2})).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let (status, event) = app.get(&location).await;
    assert_eq!((status, event["event"]["name"].as_str()), (StatusCode::OK, Some("located")), "{location}");

    // The document lists every code, and so does docs/api.md.
    let doc = document(&app.address).await;
    let codes: Vec<String> = doc["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    for code in &seen {
        assert!(codes.contains(code), "{code} is not in the document's ErrorCode: {codes:?}");
    }
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let refusals = doc["components"]["schemas"]["Refusal"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned());
    let hold_codes = ["too_many_holds", "hold_expired", "hold_released", "hold_lost", "hold_confirmed", "request_in_progress"].map(str::to_owned);
    for code in codes.iter().cloned().chain(refusals).chain(hold_codes) {
        assert!(docs.contains(&format!("| `{code}` |")), "docs/api.md's table of codes lacks `{code}`");
    }
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

    // With one, the document asks for it on admin, and only there.
    let doc = document(&app.address).await;
    assert_eq!(doc, serde_json::to_value(booking_server::http::openapi_document(true)).unwrap(), "served = built from the code");
    assert_eq!(doc["components"]["securitySchemes"]["admin_token"]["scheme"], "bearer");
    assert_eq!(doc["paths"]["/admin/reset"]["post"]["security"], json!([{ "admin_token": [] }]));
    assert!(doc["paths"]["/admin/reset"]["post"]["responses"]["401"].is_object());
    assert!(doc["paths"]["/book"]["post"].get("security").is_none(), "booking needs no token");

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
