//! `GET /events/{id}/stream`: bookings on any replica reach every replica's
//! streams, a stream that does not read delays nobody, and each replica caps
//! its streams.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Options, spawn_app_with};

/// Reads server-sent events from a response until `count` named `name` have
/// arrived (or five seconds pass); returns their data.
async fn events(response: reqwest::Response, name: &str, count: usize) -> Vec<Value> {
    events_within(response, name, count, Duration::from_secs(5)).await
}

/// [`events`], for up to `limit`.
async fn events_within(mut response: reqwest::Response, name: &str, count: usize, limit: Duration) -> Vec<Value> {
    let mut text = String::new();
    let mut found = Vec::new();
    let deadline = Instant::now() + limit;
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

/// Far more changes than a stream's backlog (1,024), with one stream that
/// never reads: the bookings are not held up by it, a stream that reads sees
/// every change, and the silent one, when it finally reads, is told to
/// resync instead of silently missing changes. (The kernel first buffers a
/// few MiB of a stream nobody reads, some 6,700 of these changes here, before
/// the replica's own backlog fills: hence 12,000 changes of the longest
/// customer id.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_falls_behind_its_backlog_delays_no_booking_and_is_told_to_resync() {
    const BOOKINGS: usize = 12_000;
    let first = spawn_app_with(Options { hold_ms: 0, ..Options::default() }).await;
    let second = first.sibling("replica-b").await;
    let (status, event) = first.post("/admin/events", serde_json::json!({"name": "backlog", "rows": 120, "seats_per_row": 100})).await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let event_id = event["event"]["id"].as_i64().unwrap();
    let path = format!("/events/{event_id}/stream");

    let silent = tokio::net::TcpSocket::new_v4().unwrap();
    silent.set_recv_buffer_size(4096).unwrap();
    let mut silent = silent.connect(first.address.trim_start_matches("http://").parse().unwrap()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut silent, format!("GET {path} HTTP/1.1\r\nHost: lab\r\n\r\n").as_bytes()).await.unwrap();
    let reader = reqwest::Client::new().get(format!("{}{path}", first.address)).send().await.expect("stream");
    let listening = tokio::spawn(events_within(reader, "seat", BOOKINGS, Duration::from_secs(120)));

    // Bookings on the other replica, eight at a time, each timed.
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let client = reqwest::Client::new();
            let url = format!("{}/book", second.address);
            tokio::spawn(async move {
                let mut slowest = Duration::ZERO;
                for i in (worker..BOOKINGS).step_by(8) {
                    let seat = format!("{}{}", row_name(i / 100), i % 100 + 1);
                    let sent = Instant::now();
                    // The longest customer id (255 characters): big changes fill the socket sooner.
                    let body = serde_json::json!({"event_id": event_id, "seat_number": seat, "customer_id": format!("{i:0>255}")});
                    let response = client.post(&url).json(&body).send().await.expect("book");
                    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap_or_default());
                    slowest = slowest.max(sent.elapsed());
                }
                slowest
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for worker in workers {
        slowest = slowest.max(worker.await.unwrap());
    }
    eprintln!("{BOOKINGS} bookings took {:?} with a silent stream open; the slowest {slowest:?}", started.elapsed());
    assert!(slowest < Duration::from_secs(2), "a silent stream held a booking up for {slowest:?}");

    let seen = listening.await.expect("reader");
    assert_eq!(seen.len(), BOOKINGS, "the reading stream saw every change");

    // Now the silent stream reads: somewhere in what it was sent, a resync.
    let mut text = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut told = false;
    while !told && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncReadExt::read(&mut silent, &mut buf)).await {
            Ok(Ok(n)) if n > 0 => text.extend_from_slice(&buf[..n]),
            _ => break,
        }
        told = String::from_utf8_lossy(&text).contains("event: resync");
    }
    let seats_seen = String::from_utf8_lossy(&text).matches("event: seat").count();
    eprintln!("the silent stream, read at last: {seats_seen} changes ({} bytes), then {}", text.len(), if told { "a resync" } else { "no resync" });
    assert!(seats_seen < BOOKINGS, "it fell behind (only {seats_seen} of {BOOKINGS} changes reached it)");
    assert!(told, "a stream that fell behind its backlog is told to resync");
}

/// The name the database gives row `row` (0-based): A ... Z, AA, AB, ...
fn row_name(row: usize) -> String {
    let letter = |n: usize| char::from(b'A' + n as u8);
    if row < 26 { letter(row).to_string() } else { format!("{}{}", letter(row / 26 - 1), letter(row % 26)) }
}
