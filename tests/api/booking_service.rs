//! The booking service on its own, without HTTP: what `booking::Bookings`
//! decides and stores is what every answer is made of.

use booking_server::booking::{Decision, Error, IdempotencyKey, Reply, Request};
use booking_server::domain::{BookingStatus, CustomerId, Refusal, SeatNumber, StrategyName};

use crate::helpers::{count, spawn_app, spawn_app_with, Options};

fn request(seat: &str, customer: &str, key: Option<&str>) -> Request {
    Request {
        event_id: 1,
        seat_number: SeatNumber::parse(seat).unwrap(),
        customer_id: CustomerId::parse(customer).unwrap(),
        key: key.map(|key| IdempotencyKey::parse(key).unwrap()),
    }
}

fn answered(reply: Reply) -> booking_server::booking::Answer {
    match reply {
        Reply::Answered(answer) => answer,
        other => panic!("expected a fresh answer, got {other:?}"),
    }
}

#[tokio::test]
async fn a_free_seat_is_booked_and_a_taken_one_refused_with_the_reason() {
    let app = spawn_app_with(Options { strategy: "pessimistic", ..Options::default() }).await;

    let alice = answered(app.bookings.book(request("A1", "alice", None)).await.unwrap());
    let bob = answered(app.bookings.book(request("A1", "bob", None)).await.unwrap());

    assert_eq!(alice.status(), BookingStatus::Confirmed);
    assert_eq!(alice.strategy, StrategyName::Pessimistic);
    assert_eq!(alice.instance, "replica-a");
    assert!(matches!(alice.decision, Decision::Booked { holders: 1, .. }), "{alice:?}");
    assert_eq!(bob.status(), BookingStatus::Failed);
    assert_eq!(bob.refusal(), Some(Refusal::SeatTaken));
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings WHERE status = 'confirmed'").await, 1);
}

#[tokio::test]
async fn a_second_holder_is_double_booked_as_the_database_decided_it() {
    let app = spawn_app_with(Options { hold_ms: 300, ..Options::default() }).await;

    let (first, second) =
        tokio::join!(app.bookings.book(request("A1", "alice", None)), app.bookings.book(request("A1", "bob", None)));
    let mut answers = [answered(first.unwrap()), answered(second.unwrap())];
    answers.sort_by_key(|answer| answer.status() == BookingStatus::DoubleBooked);

    assert_eq!(answers.each_ref().map(|answer| answer.status()), [BookingStatus::Confirmed, BookingStatus::DoubleBooked]);
    assert!(matches!(answers[1].decision, Decision::Booked { holders: 2, .. }), "{:?}", answers[1]);
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings WHERE status = 'double_booked'").await, 1);
}

#[tokio::test]
async fn a_key_replays_its_answer_and_a_reused_key_is_refused() {
    let app = spawn_app().await;

    let first = answered(app.bookings.book(request("A1", "alice", Some("k-1"))).await.unwrap());
    let again = app.bookings.book(request("A1", "alice", Some("k-1"))).await.unwrap();
    let reused = app.bookings.book(request("A2", "alice", Some("k-1"))).await;

    match again {
        Reply::Replayed(answer) => assert_eq!(answer, first, "a replay is the same answer"),
        other => panic!("expected a replay, got {other:?}"),
    }
    assert!(matches!(reused, Err(Error::KeyReused { .. })), "{reused:?}");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 1, "one booking for the key");
}

#[tokio::test]
async fn an_unknown_seat_is_an_error_not_an_answer_and_writes_nothing() {
    let app = spawn_app().await;

    let result = app.bookings.book(request("Z99", "alice", Some("k-2"))).await;

    let Err(Error::Failed(booking_server::error::Error::NotFound(message))) = result else { panic!("expected not found, got {result:?}") };
    assert_eq!(message, "seat 'Z99' does not exist in event 1");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 0);
    assert_eq!(count(&app.options, "SELECT count(*) FROM idempotency_keys").await, 0, "the key is let go");
}

#[tokio::test]
async fn a_booking_whose_client_hung_up_is_written_before_the_replica_stops() {
    let app = spawn_app_with(Options { strategy: "pessimistic", hold_ms: 1500, ..Options::default() }).await;
    let options = app.options.clone();
    let impatient = reqwest::Client::builder().timeout(std::time::Duration::from_millis(300)).build().unwrap();

    let hung_up = impatient
        .post(format!("{}/book", app.address))
        .json(&serde_json::json!({"event_id": 1, "seat_number": "A1", "customer_id": "alice"}))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up before the 1.5 s hold ended");
    app.stop().await;

    assert_eq!(
        count(&options, "SELECT count(*) FROM bookings WHERE status = 'confirmed' AND customer_id = 'alice'").await,
        1,
        "the replica waited for the booking its client left behind"
    );
}
