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
async fn the_seat_list_pages_by_cursor_and_one_seat_reads_alone() {
    let app = spawn_app().await;
    app.book("B7", "alice").await;

    // 100 seats in pages of 30: 30, 30, 30, 10, each seat once, in seat-map order.
    let (mut seen, mut pages, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(after) => format!("/events/1/seats?limit=30&cursor={after}"),
            None => "/events/1/seats?limit=30".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        assert_eq!(page["limit"], 30);
        let seats = page["seats"].as_array().unwrap();
        assert_eq!(page["count"], seats.len());
        pages.push(seats.len());
        seen.extend(seats.iter().map(|seat| seat["seat_number"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages.len() < 10, "the pages never end: {pages:?}");
    }
    assert_eq!(pages, [30, 30, 30, 10]);
    let (_, whole) = app.get("/events/1/seats").await;
    let order: Vec<String> = whole["seats"].as_array().unwrap().iter().map(|seat| seat["seat_number"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, order, "paging visits every seat once, in the list's order");
    assert_eq!((whole["limit"].as_i64(), whole["next_cursor"].is_null()), (Some(1000), true), "the default page holds the seeded event");
    assert_eq!(&order[..3], ["A1", "A2", "A3"]);
    assert_eq!(order[9], "A10", "seat 10 comes after seat 9, not after seat 1");

    // Pages of free seats skip the booked one.
    let (_, free) = app.get("/events/1/seats?available_only=true&limit=20&cursor=A10").await;
    let free: Vec<&str> = free["seats"].as_array().unwrap().iter().map(|seat| seat["seat_number"].as_str().unwrap()).collect();
    assert_eq!(free.first(), Some(&"B1"));
    assert!(!free.contains(&"B7") && free.len() == 20, "{free:?}");

    // One seat, without the list.
    let (status, seat) = app.get("/events/1/seats/B7").await;
    assert_eq!(status, StatusCode::OK, "{seat}");
    assert_eq!((seat["seat_number"].as_str(), seat["is_booked"].as_bool(), seat["booked_by"].as_str()), (Some("B7"), Some(true), Some("alice")));
    assert_eq!(app.get("/events/1/seats/B8").await.1["is_booked"], false);
}

#[tokio::test]
async fn unknown_or_malformed_events_are_client_errors() {
    let app = spawn_app().await;

    let cases = [
        ("/events/999", StatusCode::NOT_FOUND, "event 999 does not exist"),
        ("/events/999/seats", StatusCode::NOT_FOUND, "event 999 does not exist"),
        ("/events/abc", StatusCode::BAD_REQUEST, "expected an integer, got \"abc\""),
        ("/events/1/seats?available_only=maybe", StatusCode::BAD_REQUEST, "available_only"),
        ("/events/1/seats?limit=0", StatusCode::BAD_REQUEST, "limit must be from 1 to 10000, got 0"),
        ("/events/1/seats?limit=10001", StatusCode::BAD_REQUEST, "limit must be from 1 to 10000"),
        ("/events/1/seats?cursor=1A", StatusCode::BAD_REQUEST, "cursor: seat_number must be"),
        ("/events/1/seats/Z99", StatusCode::NOT_FOUND, "event 1 has no seat Z99"),
        ("/events/999/seats/A1", StatusCode::NOT_FOUND, "event 999 does not exist"),
        ("/events/1/seats/A-1", StatusCode::BAD_REQUEST, "seat_number must be"),
    ];
    for (path, expected, message) in cases {
        let (status, body) = app.get(path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(message), "{path}: {body}");
    }
}
