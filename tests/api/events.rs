use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_seed_event_has_100_seats_in_three_sections() {
    let app = spawn_app().await;

    let (status, body) = app.get("/events/1").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["event"]["id"], 1);
    assert_eq!(body["event"]["total_seats"], 100);
    assert_eq!(body["seats"]["total"], 100);
    assert_eq!(body["seats"]["available"], 100);
    assert_eq!(body["seats"]["booked"], 0);
    let details = body["seats"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 100);
    let seat = |number: &str| details.iter().find(|seat| seat["seat_number"] == number).unwrap().clone();
    assert_eq!(seat("A1")["section"], "VIP");
    assert_eq!(seat("C10")["section"], "VIP");
    assert_eq!(seat("D1")["section"], "Standard");
    assert_eq!(seat("G10")["section"], "Standard");
    assert_eq!(seat("H1")["section"], "Economy");
    assert_eq!(seat("J10")["row_name"], "J");
}

#[tokio::test]
async fn seats_can_be_filtered_to_the_available_ones() {
    let app = spawn_app().await;
    app.book("B7", "alice").await;

    let (status, all) = app.get("/events/1/seats").await;
    let (_, available) = app.get("/events/1/seats?available_only=true").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["seats"].as_array().unwrap().len(), 100);
    let available = available["seats"].as_array().unwrap();
    assert_eq!(available.len(), 99);
    assert!(available.iter().all(|seat| seat["seat_number"] != "B7"));
    let (_, event) = app.get("/events/1").await;
    assert_eq!(event["seats"]["booked"], 1);
}

#[tokio::test]
async fn unknown_or_malformed_events_are_client_errors() {
    let app = spawn_app().await;

    let cases = [
        ("/events/999", StatusCode::NOT_FOUND, "event 999 does not exist"),
        ("/events/999/seats", StatusCode::NOT_FOUND, "event 999 does not exist"),
        ("/events/abc", StatusCode::BAD_REQUEST, "Cannot parse"),
        ("/events/1/seats?available_only=maybe", StatusCode::BAD_REQUEST, "available_only"),
    ];
    for (path, expected, message) in cases {
        let (status, body) = app.get(path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(message), "{path}: {body}");
    }
}
