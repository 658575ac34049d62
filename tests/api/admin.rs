use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{burst, count, spawn_app};

#[tokio::test]
async fn the_strategy_can_be_read_and_switched() {
    let app = spawn_app().await;

    let (status, body) = app.get("/admin/strategy").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["strategy"], "none");

    let switched = app.set_strategy("pessimistic").await;
    assert_eq!(switched["old_strategy"], "none");
    assert_eq!(switched["new_strategy"], "pessimistic");
    assert_eq!(app.strategy().await, "pessimistic");
    let (_, booked) = app.book("A1", "alice").await;
    assert_eq!(booked["strategy"], "pessimistic");
}

#[tokio::test]
async fn an_unknown_strategy_is_refused_with_the_valid_names() {
    let app = spawn_app().await;

    for bad in [json!({"strategy": "optimistik"}), json!({"strategy": ""}), json!({"strategy": 3}), json!({})] {
        let (status, body) = app.post("/admin/strategy", bad.clone()).await;
        assert!(status.is_client_error(), "{bad}: {status}");
        assert!(body["error"].as_str().unwrap().contains("strategy"), "{bad}: {body}");
    }
    let (_, body) = app.post("/admin/strategy", json!({"strategy": "optimistik"})).await;
    assert_eq!(
        body["error"],
        "strategy: unknown strategy 'optimistik'; valid strategies are: none, mutex, pessimistic, optimistic, distributed, redlock, fenced, etcd"
    );
    assert_eq!(app.strategy().await, "none");
}

#[tokio::test]
async fn reset_frees_seats_deletes_bookings_and_clears_locks() {
    let app = spawn_app().await;
    app.set_strategy("fenced").await;
    for (seat, customer) in [("A1", "alice"), ("A2", "bob")] {
        let (status, booked) = app.book(seat, customer).await;
        assert_eq!((status, &booked["status"]), (StatusCode::OK, &json!("confirmed")), "{booked}");
        assert_eq!(booked["fencing_token"], 1, "{booked}");
    }
    let (_, again) = app.book("A1", "eve").await;
    assert_eq!(again["reason"], "seat_taken", "{again}");
    assert_eq!(again["fencing_token"], 2, "A1's counter moved on: {again}");
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 3);
    // A lock left behind by a crashed holder.
    let redis = redis::Client::open(app.options.redis_url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let lock_key = format!("{}lock:1:A3", app.options.prefix);
    let _: () = redis::cmd("SET").arg(&lock_key).arg("crashed-holder").query_async(&mut conn).await.unwrap();

    let (status, body) = app.post("/admin/reset?event_id=1", json!({})).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["available_seats"], 100);
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 0);
    assert_eq!(count(&app.options, "SELECT count(*) FROM seats WHERE is_booked OR fencing_token <> 0 OR version <> 0").await, 0);
    let exists: bool = redis::cmd("EXISTS").arg(&lock_key).query_async(&mut conn).await.unwrap();
    assert!(!exists, "the stale lock is gone");
    let (_, rebooked) = app.book("A3", "carol").await;
    assert_eq!(rebooked["status"], "confirmed", "{rebooked}");
    let (_, rebooked) = app.book("A1", "dave").await;
    assert_eq!(rebooked["status"], "confirmed", "{rebooked}");
    assert_eq!(rebooked["fencing_token"], 1, "A1's fencing counter starts again: {rebooked}");
}

#[tokio::test]
async fn resetting_an_unknown_event_is_not_found() {
    let app = spawn_app().await;

    let (status, body) = app.post("/admin/reset?event_id=77", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "event 77 does not exist");

    let (status, _) = app.post("/admin/reset?event_id=seven", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn double_bookings_and_stats_show_what_a_race_did() {
    let app = spawn_app().await;

    let race = burst(&[&app], "C3", 10).await;

    let (status, found) = app.get("/admin/double-bookings").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["count"], 1);
    let entry = &found["double_bookings"][0];
    assert_eq!(entry["seat_number"], "C3");
    assert_eq!(entry["event_id"], 1);
    let holders = entry["booking_count"].as_u64().unwrap() as usize;
    assert_eq!(holders, race.confirmed + race.double_booked);
    assert_eq!(entry["customers"].as_array().unwrap().len(), holders);

    let (_, stats) = app.get("/admin/stats").await;
    let totals = &stats["totals"];
    assert_eq!(totals["total"], 10);
    assert_eq!(totals["double_booked"].as_u64().unwrap() as usize, race.double_booked);
    assert_eq!(
        totals["confirmed"].as_u64().unwrap() + totals["failed"].as_u64().unwrap() + totals["double_booked"].as_u64().unwrap(),
        10
    );
}

#[tokio::test]
async fn a_load_test_event_can_be_created_with_many_seats_and_deleted() {
    let app = spawn_app().await;

    let (status, body) = app.post("/admin/events", json!({"name": "load", "rows": 30, "seats_per_row": 200})).await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    let event_id = body["event"]["id"].as_i64().unwrap();
    assert_eq!(body["event"]["total_seats"], 6000);
    let (_, event) = app.get(&format!("/events/{event_id}")).await;
    assert_eq!(event["seats"]["available"], 6000);
    let numbers: Vec<_> = event["seats"]["details"].as_array().unwrap().iter().map(|seat| seat["seat_number"].as_str().unwrap().to_owned()).collect();
    for seat in ["A1", "A200", "Z1", "AA1", "AD200"] {
        assert!(numbers.iter().any(|number| number == seat), "{seat} missing");
    }
    let (status, booked) = app.post("/book", json!({"event_id": event_id, "seat_number": "AD200", "customer_id": "c"})).await;
    assert_eq!(status, StatusCode::OK, "{booked}");

    let (status, deleted) = app.delete(&format!("/admin/events/{event_id}")).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(app.get(&format!("/events/{event_id}")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_that_are_too_big_or_malformed_are_refused() {
    let app = spawn_app().await;

    let cases = [
        (json!({"name": "x", "rows": 0, "seats_per_row": 10}), "rows"),
        (json!({"name": "x", "rows": 201, "seats_per_row": 10}), "rows"),
        (json!({"name": "x", "rows": 1.5, "seats_per_row": 10}), "rows"),
        (json!({"name": "x", "rows": 10, "seats_per_row": 0}), "seats_per_row"),
        (json!({"name": "x", "rows": 10, "seats_per_row": 1001}), "seats_per_row"),
        (json!({"name": format!(" {}", "n".repeat(200)), "rows": 1, "seats_per_row": 1}), "name"),
        (json!({"name": " ", "rows": 1, "seats_per_row": 1}), "name"),
        (json!({"rows": 1, "seats_per_row": 1}), "name"),
        (json!({"name": "x", "rows": "many", "seats_per_row": 1}), "rows"),
        (json!({"name": "a\u{0}b", "rows": 1, "seats_per_row": 1}), "name"),
        (json!({"name": "x", "venue": "v\u{0}", "rows": 1, "seats_per_row": 1}), "venue"),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/admin/events", body.clone()).await;
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(answer["error"].as_str().unwrap().contains(field), "{body}: {answer}");
    }
    let (status, answer) = app.delete("/admin/events/1").await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::CONFLICT, Some("seed_event")), "{answer}");
    let (status, _) = app.delete("/admin/events/999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
