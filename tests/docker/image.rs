//! The image as `docker run` starts it: against real Postgres and Redis it
//! migrates, answers, books, runs as its non-root user, reaches `healthy`,
//! and on `docker stop` finishes the booking in flight and exits 0.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::docker::{self, docker, inspect, run, wait_until};

#[path = "../common/ports.rs"]
mod ports;

/// Removes the container, however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_as_its_user_books_becomes_healthy_and_drains_on_docker_stop() {
    let image = docker::image();
    let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let database = format!("booking_docker_{unique}");
    let port = ports::reserve();
    let container = Container(format!("booking-test-{unique}"));
    // Host networking: the container reaches this machine's Postgres and
    // Redis on 127.0.0.1, as a replica of the native cluster does.
    let server = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let env = [
        format!("DATABASE_URL={server}/{database}"),
        "REDIS_URL=redis://127.0.0.1:6379".to_owned(),
        format!("REDIS_KEY_PREFIX=docker:{unique}:"),
        format!("LISTEN_ADDR=127.0.0.1:{}", port.port),
        format!("HEALTHCHECK_ADDR=127.0.0.1:{}", port.port),
        "HOLD_MS=2000".to_owned(),
        "LOCKING_STRATEGY=pessimistic".to_owned(),
    ];
    let mut args = vec!["run", "-d", "--name", &container.0, "--network", "host"];
    for setting in &env {
        args.extend(["-e", setting.as_str()]);
    }
    args.push(image);
    run(&mut docker(&args));

    let base = format!("http://127.0.0.1:{}", port.port);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let health = |path: &'static str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move { http.get(url).send().await.is_ok_and(|response| response.status() == StatusCode::OK) }
    };
    let started = Instant::now();
    while !health("/health").await {
        assert!(started.elapsed() < Duration::from_secs(60), "no /health within 60 s:\n{}", run(&mut docker(&["logs", &container.0])));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(health("/ready").await, "ready: Postgres and Redis answer");
    assert_eq!(run(&mut docker(&["exec", &container.0, "id", "-u"])).trim(), "10001", "runs as the image's own user");

    // A booking through the container is written to Postgres.
    let book = |seat: &'static str| {
        let (http, url) = (http.clone(), format!("{base}/book"));
        async move {
            let response = http.post(url).json(&json!({"event_id": 1, "seat_number": seat, "customer_id": "docker"})).send().await?;
            Ok::<_, reqwest::Error>((response.status(), response.json::<serde_json::Value>().await?))
        }
    };
    let (status, body) = book("A1").await.expect("book");
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("confirmed")), "{body}");
    let pool = sqlx::PgPool::connect(&format!("{server}/{database}")).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings WHERE customer_id = 'docker'").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 1);

    wait_until(Duration::from_secs(60), "Docker's HEALTHCHECK reports healthy", || {
        inspect(&container.0, "{{.State.Health.Status}}") == "healthy"
    });

    // SIGTERM while a booking is in its 2 s hold: it finishes, then the
    // process exits 0, well inside Compose's 20 s grace period.
    let in_flight = tokio::spawn(book("A2"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    let name = container.0.clone();
    tokio::task::spawn_blocking(move || run(&mut docker(&["stop", "-t", "20", &name]))).await.unwrap();
    let took = stopping.elapsed();
    let (status, body) = in_flight.await.unwrap().expect("the booking in flight got its answer");
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("confirmed")), "{body}");
    assert_eq!(inspect(&container.0, "{{.State.ExitCode}}"), "0", "{}", run(&mut docker(&["logs", &container.0])));
    assert!(took < Duration::from_secs(20), "docker stop took {took:?}: SIGKILL, not a drain");
    eprintln!("docker stop drained the booking in flight and exited 0 in {took:?}");

    pool.close().await;
    let admin = sqlx::PgPool::connect(&format!("{server}/postgres")).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))).execute(&admin).await.unwrap();
    admin.close().await;
}
