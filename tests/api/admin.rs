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
        "strategy: unknown strategy 'optimistik'; valid strategies are: none, mutex, pessimistic, optimistic, distributed, redlock, fenced"
    );
    assert_eq!(app.strategy().await, "none");
}

#[tokio::test]
async fn reset_frees_seats_deletes_bookings_and_clears_locks() {
    let app = spawn_app().await;
    app.set_strategy("fenced").await;
    app.book("A1", "alice").await;
    app.book("A2", "bob").await;
    // A lock left behind by a crashed holder.
    let redis = redis::Client::open(app.options.redis_url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let lock_key = format!("{}lock:1:A3", app.options.prefix);
    let _: () = redis::cmd("SET").arg(&lock_key).arg("crashed-holder").query_async(&mut conn).await.unwrap();

    let (status, body) = app.post("/admin/reset?event_id=1", json!({})).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["available_seats"], 100);
    assert_eq!(count(&app.options, "SELECT count(*) FROM bookings").await, 0);
    let exists: bool = redis::cmd("EXISTS").arg(&lock_key).query_async(&mut conn).await.unwrap();
    assert!(!exists, "the stale lock is gone");
    let (_, rebooked) = app.book("A3", "carol").await;
    assert_eq!(rebooked["status"], "confirmed");
    assert_eq!(rebooked["fencing_token"], 1, "fencing counters start again");
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
async fn metrics_are_exposed_with_this_replicas_label() {
    let app = spawn_app().await;
    app.book("A1", "alice").await;

    let text = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();

    for series in ["bookings_total{", "booking_duration_seconds_bucket{", "current_locking_strategy{", "http_requests_total{"] {
        let line = text.lines().find(|line| line.starts_with(series)).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
        assert!(line.contains(r#"instance="replica-a""#), "{line}");
    }
}
