//! One bad client must not take the cluster down: while one client books
//! seats through nginx, another sends every kind of broken request it can
//! (bodies too large, cut short or trickled, malformed JSON, wrong content
//! types, broken and oversized headers, unknown methods). The good client
//! must see no 5xx and no broken connection, every bad request must get a
//! 4xx (or, where HTTP allows nothing else, a closed connection), and nginx
//! must never count a healthy replica as failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{GoodClient, NativeCluster};

/// How long the bad client keeps sending.
const BAD_FOR: Duration = Duration::from_secs(6);

/// One broken request: its name, the bytes sent first, and what follows.
struct Bad {
    name: &'static str,
    head: Vec<u8>,
    then: Then,
}

enum Then {
    /// Nothing more; wait for the answer.
    Wait,
    /// Close the sending side (the body ends before its Content-Length).
    HangUp,
    /// Send these bytes one at a time, 50 ms apart, then wait.
    Trickle(Vec<u8>),
}

fn request(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: lab\r\n").into_bytes();
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn json_post(path: &str, extra: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "application/json".to_owned()), ("Content-Length", body.len().to_string())];
    headers.extend(extra.iter().cloned());
    request("POST", path, &headers, body)
}

fn booking(customer: &str) -> Vec<u8> {
    format!(r#"{{"event_id":1,"seat_number":"J9","customer_id":"{customer}"}}"#).into_bytes()
}

/// Every kind of broken request, each on a connection of its own.
fn bad_requests() -> Vec<Bad> {
    let huge = booking(&"x".repeat(100_000));
    let key = || ("Idempotency-Key", uuid::Uuid::new_v4().to_string());
    let many_headers: Vec<(&str, String)> = (0..300).map(|_| ("X-Filler", "1".to_owned())).collect();
    let mut chunked = request("POST", "/book", &[("Content-Type", "application/json".into()), ("Transfer-Encoding", "chunked".into())], b"");
    chunked.extend_from_slice(format!("{:x}\r\n{}\r\n0\r\n\r\n", huge.len(), String::from_utf8_lossy(&huge)).as_bytes());
    let body = booking("trickle");
    vec![
        Bad { name: "body over the limit", head: json_post("/book", &[], &huge), then: Then::Wait },
        Bad { name: "body over the limit, keyed", head: json_post("/book", &[key()], &huge), then: Then::Wait },
        Bad { name: "chunked body over the limit", head: chunked, then: Then::Wait },
        Bad { name: "body over the limit to an admin route", head: json_post("/admin/events", &[], &huge), then: Then::Wait },
        Bad {
            name: "body shorter than its Content-Length",
            head: request("POST", "/book", &[("Content-Type", "application/json".into()), ("Content-Length", "300".into())], &body),
            then: Then::HangUp,
        },
        Bad {
            name: "slow client",
            head: request("POST", "/book", &[("Content-Type", "application/json".into()), ("Content-Length", body.len().to_string())], b""),
            then: Then::Trickle(body.clone()),
        },
        Bad { name: "malformed JSON", head: json_post("/book", &[], br#"{"event_id": 1, "seat_"#), then: Then::Wait },
        Bad { name: "JSON of the wrong shape", head: json_post("/book", &[], br#"[1, 2, 3]"#), then: Then::Wait },
        Bad {
            name: "text/plain body",
            head: request("POST", "/book", &[("Content-Type", "text/plain".into()), ("Content-Length", body.len().to_string())], &body),
            then: Then::Wait,
        },
        Bad {
            name: "text/plain body, keyed",
            head: request("POST", "/book", &[("Content-Type", "text/plain".into()), ("Content-Length", body.len().to_string()), key()], &body),
            then: Then::Wait,
        },
        Bad { name: "no content type", head: request("POST", "/book", &[("Content-Length", body.len().to_string())], &body), then: Then::Wait },
        Bad { name: "a body on a route that takes none", head: json_post("/nowhere", &[], &body), then: Then::Wait },
        Bad { name: "a body without the admin token", head: json_post("/admin/strategy", &[("Authorization", "Bearer wrong".into())], &body), then: Then::Wait },
        Bad { name: "300 headers", head: json_post("/book", &many_headers, &body), then: Then::Wait },
        Bad { name: "a 9 KiB header", head: request("GET", "/health", &[("X-Big", "a".repeat(9 * 1024))], b""), then: Then::Wait },
        Bad { name: "a header line without a colon", head: b"GET /health HTTP/1.1\r\nHost: lab\r\nno colon here\r\n\r\n".to_vec(), then: Then::Wait },
        Bad { name: "a control byte in a header", head: b"GET /health HTTP/1.1\r\nHost: lab\r\nX-Bad: a\x01b\r\n\r\n".to_vec(), then: Then::Wait },
        Bad {
            name: "Content-Length and chunked together",
            head: b"POST /book HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            then: Then::Wait,
        },
        Bad {
            name: "a Content-Length that is not a number",
            head: b"POST /book HTTP/1.1\r\nHost: lab\r\nContent-Type: application/json\r\nContent-Length: ten\r\n\r\n".to_vec(),
            then: Then::Wait,
        },
        Bad { name: "a request line of 10 KiB", head: request("GET", &format!("/health?{}", "a".repeat(10 * 1024)), &[], b""), then: Then::Wait },
        Bad { name: "garbage instead of a request line", head: b"\x16\x03\x01 hello\r\n\r\n".to_vec(), then: Then::Wait },
        Bad { name: "an unknown method", head: request("TRACE", "/health", &[], b""), then: Then::Wait },
        Bad { name: "a method the route does not take", head: request("DELETE", "/book", &[], b""), then: Then::Wait },
    ]
}

/// Sends one bad request on a fresh connection: the status of the answer,
/// or `None` for a connection closed without one.
async fn send(address: &str, bad: &Bad) -> Option<u16> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    let _ = stream.write_all(&bad.head).await;
    match &bad.then {
        Then::Wait => {}
        Then::HangUp => {
            let _ = stream.shutdown().await;
        }
        Then::Trickle(bytes) => {
            for byte in bytes {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = stream.write_all(&[*byte]).await;
            }
        }
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{}: no answer and no close within 15 s", bad.name);
    let line = String::from_utf8_lossy(&answer);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_client_costs_the_good_clients_nothing() {
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "0")]);
    cluster.client().set_strategy("pessimistic").await.unwrap();
    let address = cluster.lb_url.trim_start_matches("http://").to_owned();

    let good = GoodClient::start(&cluster).await;

    // The bad client: every broken request in turn, several at once, for BAD_FOR.
    let bad = Arc::new(bad_requests());
    let started = Instant::now();
    // Six senders take every kind in turn; three more send only the first
    // four kinds, the bodies over the limit, which cost the most before.
    let senders: Vec<_> = (0..9)
        .map(|sender| {
            let (bad, address) = (bad.clone(), address.clone());
            let kinds = if sender < 6 { bad.len() } else { 4 };
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut i = sender;
                while started.elapsed() < BAD_FOR {
                    let request = &bad[i % kinds];
                    answers.push((request.name, send(&address, request).await));
                    i += 1;
                }
                answers
            })
        })
        .collect();
    let mut bad_answers: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for sender in senders {
        for (name, status) in sender.await.unwrap() {
            let status = status.map_or("closed".to_owned(), |status| status.to_string());
            *bad_answers.entry(name).or_default().entry(status).or_default() += 1;
        }
    }
    let good_answers = good.stop().await;

    let report = format!("good client: {good_answers:?}\nbad client:\n{}", bad_answers.iter().map(|(name, s)| format!("  {name}: {s:?}\n")).collect::<String>());
    eprintln!("{report}");
    let nginx = cluster.log("nginx-error");
    let good_failures: usize = good_answers.iter().filter(|(status, _)| !status.starts_with('2')).map(|(_, n)| n).sum();
    assert_eq!(good_failures, 0, "the good client was failed:\n{report}\nnginx:\n{}", tail(&nginx));
    assert!(good_answers.values().sum::<usize>() > 200, "the good client booked all along: {report}");
    for request in bad.iter() {
        let answers = bad_answers.get(request.name).unwrap_or_else(|| panic!("{} was never sent: {report}", request.name));
        for status in answers.keys() {
            let closed_is_all_http_allows = matches!(request.then, Then::HangUp) || request.name.starts_with("garbage");
            let fine = status.starts_with('4') || (status == "closed" && closed_is_all_http_allows) || (request.name == "slow client" && status == "200");
            assert!(fine, "{}: answered {status}, not a 4xx:\n{report}", request.name);
        }
    }
    for sign in ["upstream prematurely closed", "no live upstreams", "reset by peer", "temporarily disabled"] {
        assert!(!nginx.contains(sign), "nginx counted a healthy replica as failed ({sign}):\n{}", tail(&nginx));
    }
}

/// Straight at a replica, without nginx: an oversized body gets a whole 413
/// in the API's shape, and the connection stays usable or is closed after
/// saying so; never reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_answers_an_oversized_body_in_full() {
    let cluster = NativeCluster::up_with(1, &[("HOLD_MS", "0")]);
    let address = format!("127.0.0.1:{}", cluster.replica_port_base);
    for size in [20_000, 100_000, 2_000_000] {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let body = booking(&"x".repeat(size));
        let mut sent = json_post("/book", &[], &body);
        sent.extend_from_slice(&request("GET", "/health", &[("Connection", "close".into())], b""));
        // Whatever the replica does not read is never acknowledged: write in
        // the background, read the answers here.
        let (mut reader, mut writer) = stream.split();
        let write = async {
            let _ = writer.write_all(&sent).await;
        };
        let mut answer = Vec::new();
        let read = async {
            let _ = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
        };
        tokio::join!(write, read);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 413"), "{size} bytes: {text}");
        assert!(text.contains(r#""error":"the request body is larger than 16384 bytes (BODY_LIMIT_BYTES)""#), "{size} bytes: {text}");
        if size <= 1_000_000 {
            // Read to its end: the connection carries the next request.
            assert!(text.contains("HTTP/1.1 200"), "{size} bytes: the next request on the connection was answered: {text}");
        } else {
            assert!(text.to_lowercase().contains("connection: close"), "{size} bytes: says it closes: {text}");
        }
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].iter().map(|line| &line[..line.len().min(300)]).collect::<Vec<_>>().join("\n")
}

/// Every answer the readers got: when it was sent, its replica (or the
/// error), and how long it took.
type Seen = Arc<std::sync::Mutex<Vec<(Instant, Result<String, String>, Duration)>>>;

/// Four readers of `GET /health` through nginx, until aborted.
fn readers(cluster: &NativeCluster, seen: &Seen) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|_| {
            let (client, seen) = (cluster.client(), seen.clone());
            tokio::spawn(async move {
                for _ in 0..100_000 {
                    let sent = Instant::now();
                    let answer = client.whoami().await.map_err(|error| format!("{error:#}"));
                    seen.lock().unwrap().push((sent, answer, sent.elapsed()));
                }
            })
        })
        .collect()
}

/// Reads through nginx while `fault` happens; every answer, and when the
/// fault was done.
async fn read_through(cluster: &NativeCluster, fault: &[&str], then_for: Duration) -> (Vec<(Instant, Result<String, String>, Duration)>, Instant) {
    let seen = Seen::default();
    let reading = readers(cluster, &seen);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.script(fault);
    let at = Instant::now();
    tokio::time::sleep(then_for).await;
    for reader in reading {
        reader.abort();
    }
    let seen = seen.lock().unwrap().clone();
    (seen, at)
}

/// Only real failures take a replica out of rotation, and they do it fast:
/// a killed replica is tried at most a few times (each retried elsewhere at
/// once, so no client notices); a paused one, which accepts connections and
/// answers nothing, after nginx's read timeout (20 s), with the requests it
/// held sent again elsewhere. (Then nginx tries it again with one request
/// every fail_timeout, 2 s, and that request waits the read timeout too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_leaves_rotation_at_once_and_a_paused_one_after_the_read_timeout() {
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "0")]);
    let port = |replica: u16| format!("127.0.0.1:{}", cluster.replica_port_base + replica - 1);

    // Killed: refused connections; three within 2 s take it out.
    let (seen, killed) = read_through(&cluster, &["kill", "replica-2"], Duration::from_millis(1500)).await;
    let after: Vec<_> = seen.iter().filter(|(sent, _, _)| *sent > killed).collect();
    let errors = after.iter().filter(|(_, answer, _)| answer.is_err()).count();
    let nginx = cluster.log("nginx-error");
    let refused = nginx.lines().filter(|line| line.contains("Connection refused") && line.contains(&port(2))).count();
    eprintln!("killed: {} requests in the next 1.5 s, {errors} failed; nginx tried replica-2 {refused} time(s)", after.len());
    assert_eq!(errors, 0, "a killed replica costs no GET its answer:\n{}", tail(&nginx));
    assert!(after.len() > 100, "the readers ran: {}", after.len());
    assert!((1..=6).contains(&refused), "nginx tried the dead replica {refused} times, not a few:\n{}", tail(&nginx));
    assert!(nginx.contains("temporarily disabled"), "nginx took it out:\n{}", tail(&nginx));
    cluster.script(&["up"]);

    // Paused: connections accepted, nothing answered, until the read timeout.
    let (seen, paused) = read_through(&cluster, &["pause", "replica-3"], Duration::from_secs(24)).await;
    cluster.script(&["resume", "replica-3"]);
    let errors = seen.iter().filter(|(_, answer, _)| answer.is_err()).count();
    let slowest = seen.iter().map(|(_, _, took)| *took).max().unwrap_or_default();
    let late: Vec<_> = seen.iter().filter(|(sent, _, _)| *sent > paused + Duration::from_secs(21)).collect();
    let late_stuck = late.iter().filter(|(_, _, took)| *took > Duration::from_secs(1)).count();
    eprintln!(
        "paused: slowest answer {} ms, {errors} failed; 21-24 s after the pause {} answers, {late_stuck} of them slow",
        slowest.as_millis(),
        late.len()
    );
    assert_eq!(errors, 0, "a paused replica costs no GET its answer (nginx sends it again elsewhere)");
    assert!(slowest >= Duration::from_secs(19) && slowest < Duration::from_secs(23), "held for the read timeout: {slowest:?}");
    assert!(late.len() > 100 && late_stuck <= 3, "out of rotation after the read timeout: {late_stuck} of {} slow", late.len());
}
