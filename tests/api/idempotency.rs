//! Exactly-once booking: an `Idempotency-Key` makes a retry safe, on any replica.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Options, count, spawn_app_with};

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_same_answer_on_another_replica_and_books_nothing() {
    let first = spawn_app_with(Options { strategy: "pessimistic", hold_ms: 10, ..Options::default() }).await;
    let second = first.sibling("replica-b").await;

    let (status, original, replayed) = first.book_with_key("A1", "alice", "order-1").await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{original}");
    assert_eq!(original["status"], "confirmed");

    let (status, again, replayed) = second.book_with_key("A1", "alice", "order-1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(replayed, "Idempotent-Replayed: true");
    assert_eq!(again, original, "the same body, booking id and serving instance included");
    assert_eq!(count(&first.options, "SELECT count(*) FROM bookings").await, 1, "one booking, no second attempt recorded");

    // A refusal is an answer too, and is replayed as such.
    let (status, refused, _) = second.book_with_key("A1", "bob", "order-2").await;
    assert_eq!((status, &refused["reason"]), (StatusCode::CONFLICT, &serde_json::json!("seat_taken")));
    let (status, again, replayed) = first.book_with_key("A1", "bob", "order-2").await;
    assert_eq!((status, replayed), (StatusCode::CONFLICT, true));
    assert_eq!(again, refused);
    assert_eq!(count(&first.options, "SELECT count(*) FROM bookings").await, 2);
}

#[tokio::test]
async fn a_key_reused_for_another_request_or_malformed_is_refused() {
    let app = spawn_app_with(Options { hold_ms: 0, ..Options::default() }).await;
    app.book_with_key("A1", "alice", "order-1").await;

    let (status, body, _) = app.book_with_key("A2", "alice", "order-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("different request"), "{body}");

    for bad in [String::new(), "k".repeat(256)] {
        let (status, body, _) = app.book_with_key("A3", "alice", &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"].as_str().unwrap().contains("Idempotency-Key"), "{body}");
    }
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 1);
}

#[tokio::test]
async fn ten_concurrent_requests_with_one_key_book_once() {
    // Under `none`, ten requests without keys would all book the seat.
    let app = spawn_app_with(Options { strategy: "none", hold_ms: 200, ..Options::default() }).await;
    let requests = (0..10).map(|_| app.book_with_key("A1", "alice", "one-click"));
    let answers = futures_util::future::join_all(requests).await;

    let booked: Vec<_> = answers.iter().filter(|(status, _, _)| *status == StatusCode::OK).collect();
    let in_progress = answers.iter().filter(|(_, body, _)| body["reason"] == "request_in_progress").count();
    assert_eq!(booked.len() + in_progress, 10, "{answers:?}");
    assert!(booked.iter().all(|(_, body, _)| body["booking_id"] == booked[0].1["booking_id"]), "{answers:?}");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings WHERE status <> 'failed'").await, 1);
}

#[tokio::test]
async fn a_key_whose_request_died_becomes_retryable_after_the_in_flight_limit() {
    // A 3 s in-flight limit: longer than the 2 s a request waits for the first.
    let app = spawn_app_with(Options { hold_ms: 0, idempotency_in_flight_secs: 3, ..Options::default() }).await;
    let fingerprint = r#"[1,"A1","alice"]"#;
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    // As a replica that died mid-request leaves it: claimed, no answer.
    sqlx::query("INSERT INTO idempotency_keys (key, fingerprint, expires_at) VALUES ('died', $1, now() + interval '1 day')")
        .bind(fingerprint)
        .execute(&pool)
        .await
        .unwrap();

    let (status, body, _) = app.book_with_key("A1", "alice", "died").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["reason"], "request_in_progress", "{body}");

    // The claim is older than the in-flight limit once that has passed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body, _) = app.book_with_key("A1", "alice", "died").await;
        if body["reason"] != "request_in_progress" || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, StatusCode::OK, "the retry took the key over and booked: {body}");
    assert_eq!(body["status"], "confirmed");
    pool.close().await;
}

#[tokio::test]
async fn keys_expire_and_expired_keys_are_deleted() {
    let app = spawn_app_with(Options { hold_ms: 0, idempotency_ttl_secs: 1, ..Options::default() }).await;
    let (status, _, _) = app.book_with_key("A1", "alice", "short-lived").await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, replayed) = app.book_with_key("A1", "alice", "short-lived").await;
    assert!(replayed);

    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while booking_server::storage::idempotency::expire(&pool, 100).await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&app.options, "SELECT count(*) FROM idempotency_keys").await, 0, "the expired key is deleted");

    // Expired, the key is new again: the request runs, and finds that alice
    // already holds the seat (natural idempotency), with no new booking.
    let (status, body, replayed) = app.book_with_key("A1", "alice", "short-lived").await;
    assert!(!replayed, "{body}");
    assert_eq!((status, &body["status"]), (StatusCode::OK, &serde_json::json!("confirmed")), "{body}");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 1);
    pool.close().await;
}

#[tokio::test]
async fn a_customer_who_books_a_seat_they_hold_gets_their_booking_back_without_a_key() {
    for strategy in ["none", "mutex", "pessimistic", "optimistic", "distributed", "redlock", "fenced"] {
        let app = spawn_app_with(Options { strategy, hold_ms: 0, ..Options::default() }).await;
        let (status, first) = app.book("A1", "alice").await;
        assert_eq!(status, StatusCode::OK, "{strategy}: {first}");

        let (status, again) = app.book("A1", "alice").await;
        assert_eq!(status, StatusCode::OK, "{strategy}: {again}");
        assert_eq!(again["booking_id"], first["booking_id"], "{strategy}: the same booking");
        let (status, other) = app.book("A1", "bob").await;
        assert_eq!((status, &other["reason"]), (StatusCode::CONFLICT, &serde_json::json!("seat_taken")), "{strategy}");
        assert_eq!(count(&app.options, "SELECT count(*) FROM bookings WHERE status <> 'failed'").await, 1, "{strategy}");
    }
}
