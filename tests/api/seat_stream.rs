//! `GET /events/{id}/stream`: bookings on any replica reach every replica's
//! streams, a stream that does not read delays nobody, and each replica caps
//! its streams.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, spawn_app_with};

/// Reads server-sent events from a response until `count` named `name` have
/// arrived (or five seconds pass); returns their data.
async fn events(mut response: reqwest::Response, name: &str, count: usize) -> Vec<Value> {
    let mut text = String::new();
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while found.len() < count && Instant::now() < deadline {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_millis(500), response.chunk()).await else { continue };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if block.lines().any(|line| line == format!("event: {name}")) {
                let data = block.lines().find_map(|line| line.strip_prefix("data: ")).unwrap_or("null");
                found.push(serde_json::from_str(data).expect("JSON data"));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_booking_on_one_replica_reaches_the_streams_of_another_and_a_silent_stream_delays_nobody() {
    let first = spawn_app_with(Options { hold_ms: 0, ..Options::default() }).await;
    let second = first.sibling("replica-b").await;
    let client = reqwest::Client::new();

    // A stream that is opened and never read, and one that is read.
    let silent = client.get(format!("{}/events/1/stream", first.address)).send().await.expect("stream");
    assert_eq!(silent.status(), StatusCode::OK);
    assert_eq!(silent.headers()["content-type"], "text/event-stream");
    let reader = client.get(format!("{}/events/1/stream", first.address)).send().await.expect("stream");
    let listening = tokio::spawn(events(reader, "seat", 40));

    // Forty bookings on the *other* replica, one after another.
    let started = Instant::now();
    for i in 0..40u8 {
        let seat = format!("{}{}", (b'A' + i % 10) as char, i / 10 + 1);
        let (status, body) = second.book(&seat, &format!("c{i}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    eprintln!("40 bookings took {:?} with a silent stream open", started.elapsed());

    let seen = listening.await.expect("reader");
    let booked = seen.iter().filter(|change| change["instance"] == "replica-b").count();
    assert_eq!(booked, 40, "the reading stream saw {booked} of the 40 bookings: {seen:?}");
    assert!(seen.iter().all(|change| change["event_id"] == 1 && change["kind"] == "booked"));
    drop(silent);
}

#[tokio::test]
async fn each_replica_caps_its_streams() {
    let app = spawn_app_with(Options { max_streams: 2, ..Options::default() }).await;
    let client = reqwest::Client::new();
    let url = format!("{}/events/1/stream", app.address);
    let one = client.get(&url).send().await.unwrap();
    let two = client.get(&url).send().await.unwrap();
    assert_eq!((one.status(), two.status()), (StatusCode::OK, StatusCode::OK));
    let three = client.get(&url).send().await.unwrap();
    assert_eq!(three.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = three.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("MAX_STREAMS"), "{body}");

    // A closed stream gives its place back.
    drop(one);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = client.get(&url).send().await.unwrap();
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream's place was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let unknown = client.get(format!("{}/events/999/stream", app.address)).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
