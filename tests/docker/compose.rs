//! The project's `docker-compose.yml`, as users get it: Postgres, the three
//! Redis nodes, the three etcd members and three `booking` replicas start healthy, scale to five,
//! switch strategy together, teach the lesson, and a replica killed under
//! keyed load loses no acknowledged booking.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use booking_server::domain::StrategyName;
use booking_lab::client::LabClient;
use booking_lab::exercises;
use serde_json::{Value, json};

use crate::docker::{self, compose, docker, inspect, run};

/// `docker compose down -v`, however the test ends.
struct Stack {
    project: String,
    env: Vec<(&'static str, &'static str)>,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> String {
        run(&mut compose(&self.project, &self.env, args))
    }

    /// Each `booking` container: its id and its address on the stack's network.
    fn replicas(&self) -> Vec<(String, String)> {
        let ids = self.compose(&["ps", "-q", "booking"]);
        ids.lines()
            .map(|id| (id.to_owned(), format!("http://{}:8080", inspect(id, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"))))
            .collect()
    }

    /// One SQL answer from the stack's Postgres, read inside its container.
    fn sql(&self, query: &str) -> String {
        self.compose(&["exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "booking", "-Atc", query])
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = compose(&self.project, &self.env, &["down", "-v", "--remove-orphans", "-t", "5"]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_stack_starts_scales_switches_together_and_a_killed_replica_loses_nothing() {
    docker::image();
    let stack = Stack {
        project: format!("booking-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
        env: vec![("HOLD_MS", "300"), ("POSTGRES_PASSWORD", "a-password-of-the-test")],
    };
    let services = ["postgres", "redis", "redis-2", "redis-3", "etcd-1", "etcd-2", "etcd-3", "booking"];
    let up = |extra: &[&str]| {
        let mut args = vec!["up", "-d", "--no-build", "--wait", "--wait-timeout", "180"];
        args.extend(extra);
        args.extend(services);
        stack.compose(&args)
    };
    up(&[]);
    assert_eq!(stack.replicas().len(), 3, "deploy.replicas: 3");
    up(&["--scale", "booking=5"]);
    let replicas = stack.replicas();
    assert_eq!(replicas.len(), 5, "scaled to five");

    // Every replica is its own instance (the container's hostname).
    let clients: Vec<LabClient> = replicas.iter().map(|(_, url)| LabClient::new(url).unwrap()).collect();
    let mut instances = BTreeSet::new();
    for client in &clients {
        instances.insert(client.whoami().await.expect("each replica answers"));
    }
    assert_eq!(instances.len(), 5, "{instances:?}");

    // One switch, sent to one replica, applied by all five (the barrier
    // across containers).
    let switch = clients[0].set_strategy("none").await.expect("switch");
    let switched: BTreeSet<String> = switch["switched"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(switched, instances, "{switch}");
    assert_eq!(switch["lagging"], json!([]), "{switch}");

    // The lesson: ten customers for one seat, spread over the five.
    clients[0].reset(1).await.unwrap();
    let none = exercises::race(&clients, StrategyName::None, 1, "A1", 10).await.unwrap();
    assert!(none.double_booked >= 1, "none double-books across containers: {none:?}");
    clients[0].set_strategy("pessimistic").await.unwrap();
    clients[0].reset(1).await.unwrap();
    let pessimistic = exercises::race(&clients, StrategyName::Pessimistic, 1, "A1", 10).await.unwrap();
    assert_eq!((pessimistic.confirmed, pessimistic.double_booked), (1, 0), "{pessimistic:?}");
    assert_eq!(stack.sql("SELECT count(*) FROM bookings WHERE status = 'confirmed' AND locking_strategy = 'pessimistic'").trim(), "1");
    // The consensus lock, on the stack's three etcd members.
    clients[0].set_strategy("etcd").await.unwrap();
    clients[0].reset(1).await.unwrap();
    let etcd = exercises::race(&clients, StrategyName::Etcd, 1, "A1", 10).await.unwrap();
    assert_eq!((etcd.confirmed, etcd.double_booked), (1, 0), "{etcd:?}");

    // A replica killed under keyed load: a request it was serving is sent
    // again, with its key, to another replica; nothing acknowledged is lost.
    let event: Value = clients[0].post_json("/admin/events", json!({"name": "compose kill", "rows": 8, "seats_per_row": 1000})).await.unwrap();
    let event = event["event"]["id"].as_i64().unwrap();
    let urls: Arc<Vec<String>> = Arc::new(replicas.iter().map(|(_, url)| url.clone()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let retried = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (urls, stop, retried) = (urls.clone(), stop.clone(), retried.clone());
            tokio::spawn(async move { keyed_worker(worker, event, &urls, &stop, &retried).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (victim, _) = &replicas[2];
    run(&mut docker(&["kill", victim]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = BTreeMap::new();
    for worker in workers {
        acknowledged.extend(worker.await.unwrap());
    }
    let in_database: Vec<String> =
        stack.sql(&format!("SELECT customer_id FROM bookings WHERE event_id = {event} AND status = 'confirmed'")).lines().map(str::to_owned).collect();
    let lost: Vec<_> = acknowledged.keys().filter(|customer| !in_database.contains(customer)).collect();
    let unique: BTreeSet<&String> = in_database.iter().collect();
    eprintln!(
        "compose kill: {} acknowledged, {} in Postgres, {} request(s) sent again after the kill",
        acknowledged.len(),
        in_database.len(),
        retried.load(Ordering::Relaxed)
    );
    assert!(acknowledged.len() > 20, "the load ran");
    assert!(retried.load(Ordering::Relaxed) > 0, "a request was in flight on the killed replica");
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    assert_eq!(unique.len(), in_database.len(), "a key booked twice");
}

/// Books distinct seats of `event` with a key each, starting on replica
/// `worker % n`; a request that gets no answer goes, with its key, to the
/// next replica. Every acknowledged booking, customer to seat.
async fn keyed_worker(worker: usize, event: i64, urls: &[String], stop: &AtomicBool, retried: &AtomicUsize) -> BTreeMap<String, String> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut acknowledged = BTreeMap::new();
    let started = Instant::now();
    for n in 0..1000 {
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let seat = format!("{}{}", char::from(b'A' + worker as u8), n + 1);
        let customer = format!("compose-{worker}-{n}");
        let key = uuid::Uuid::new_v4().to_string();
        for attempt in 0..urls.len() {
            let url = &urls[(worker + n + attempt) % urls.len()];
            let body = json!({"event_id": event, "seat_number": seat, "customer_id": customer});
            match http.post(format!("{url}/book")).header("Idempotency-Key", &key).json(&body).send().await {
                Ok(response) => {
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    if answer["status"] == "confirmed" {
                        acknowledged.insert(customer.clone(), seat.clone());
                    }
                    break;
                }
                Err(_) => {
                    retried.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    acknowledged
}
