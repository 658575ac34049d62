use reqwest::StatusCode;

use crate::helpers::{Options, RedisServer, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_names_the_service_instance_and_strategy() {
    let app = spawn_app().await;

    let response = app.client.get(format!("{}/health", app.address)).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-instance-id"], "replica-a");
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "booking-service");
    assert_eq!(body["instance"], "replica-a");
    assert_eq!(body["strategy"], "none");
}

#[tokio::test]
async fn every_response_names_the_replica_even_errors() {
    let app = spawn_app().await;

    for path in ["/events/1", "/events/999", "/no/such/route", "/admin/stats"] {
        let response = app.client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.headers()["x-instance-id"], "replica-a", "{path}");
    }
}

#[tokio::test]
async fn a_client_request_id_is_echoed_back() {
    let app = spawn_app().await;

    let response = app.client.get(format!("{}/health", app.address)).header("x-request-id", "trace-me-42").send().await.unwrap();

    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn ready_checks_postgres_and_redis_and_fails_without_redis() {
    let mut redis = RedisServer::start();
    let app = spawn_app_with(Options { redis_url: redis.url(), ..Options::default() }).await;

    let retry_after = |path: &'static str| {
        let request = app.client.get(format!("{}{path}", app.address)).send();
        async move { request.await.expect("request failed").headers().get("retry-after").map(|value| value.to_str().unwrap().to_owned()) }
    };
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(retry_after("/ready").await, None, "a ready replica sets no Retry-After");

    redis.stop();

    for path in ["/ready", "/health?ready=true"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!((body["status"].as_str(), body["code"].as_str()), (Some("unavailable"), Some("unavailable")), "{path}: {body}");
        assert_eq!(retry_after(path).await.as_deref(), Some("1"), "{path}: not ready is an outage to wait out");
        assert_eq!(body["checks"]["postgres"], "ok");
        assert_ne!(body["checks"]["redis"], "ok");
    }
    // Liveness stays green: the process itself is fine.
    assert_eq!(app.get("/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_finishes_the_booking_in_flight_then_refuses_new_connections() {
    // Under `mutex`, a booking in flight is visible: its seat is in the map.
    let app = spawn_app_with(Options { strategy: "mutex", hold_ms: 400, ..Options::default() }).await;
    let address = app.address.clone();
    let shutdown = app.shutdown_token();

    let in_flight = tokio::spawn({
        let client = app.client.clone();
        let url = format!("{address}/book");
        async move {
            client.post(url).json(&serde_json::json!({"event_id": 1, "seat_number": "A1", "customer_id": "last"})).send().await
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let metrics = app.client.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
        if metrics.lines().any(|line| line.starts_with("mutex_seats_tracked") && line.ends_with(" 1")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the booking never got in flight");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    shutdown.cancel();

    let answer = in_flight.await.unwrap().expect("the in-flight booking gets its answer");
    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], "confirmed");
    let options = app.options.clone();
    app.stop().await;
    assert!(reqwest::Client::new().get(format!("{address}/health")).send().await.is_err(), "no longer accepting");
    assert_eq!(crate::helpers::count(&options, "SELECT count(*) FROM bookings WHERE customer_id = 'last'").await, 1);
}

#[tokio::test]
async fn the_healthcheck_subcommand_exits_0_for_a_healthy_replica_and_1_otherwise() {
    let app = spawn_app().await;
    let binary = env!("CARGO_BIN_EXE_booking-service");
    let addr = app.address.trim_start_matches("http://").to_owned();

    let healthy = tokio::process::Command::new(binary).args(["healthcheck", "--addr", &addr]).output().await.unwrap();
    assert!(healthy.status.success(), "{healthy:?}");

    let reserved = crate::helpers::ports::reserve();
    let closed = format!("127.0.0.1:{}", reserved.port);
    let unhealthy = tokio::process::Command::new(binary).args(["healthcheck", "--addr", &closed]).output().await.unwrap();
    assert_eq!(unhealthy.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unhealthy.stderr).contains("cannot connect"), "{unhealthy:?}");
}

#[tokio::test]
async fn the_migrate_subcommand_creates_the_database_and_its_seed() {
    let options = Options::default();
    let binary = env!("CARGO_BIN_EXE_booking-service");

    let output = tokio::process::Command::new(binary).args(["migrate", "--database-url", &options.database_url]).output().await.unwrap();

    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "migrations applied");
    assert_eq!(crate::helpers::count(&options, "SELECT count(*) FROM seats WHERE event_id = 1").await, 100);
}

/// The metric families a scrape shows: name and type, from the `# TYPE` lines.
fn families(exposition: &str) -> std::collections::BTreeSet<(String, String)> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

/// The README's metric table: (name, type) per row.
fn readme_metrics() -> std::collections::BTreeSet<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("| metric | type | labels | what |").nth(1).expect("README has the metric table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn metrics_are_the_readmes_list_and_pass_promtool() {
    let app = spawn_app_with(Options { strategy: "pessimistic", ..Options::default() }).await;
    app.book("A1", "alice").await;
    app.book("A1", "bob").await;
    let scrape = || async { app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap() };
    let exposition = scrape().await;

    let exported = families(&exposition);
    let documented = readme_metrics();
    let undocumented: Vec<_> = exported.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&exported).collect();
    assert!(undocumented.is_empty() && missing.is_empty(), "exported but not in README: {undocumented:?}; in README but not exported: {missing:?}");
    for (name, kind) in &exported {
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name} is a {kind}: counters and only counters end in _total");
    }
    let process = |name: &str| {
        let line = exposition.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
    };
    // CPU in whole seconds (the recorder's counters are integers): present, not yet 1 in a test this short.
    assert!(process("process_cpu_seconds_total") >= 0.0 && process("process_resident_memory_bytes") > 1e6, "the process's own CPU and memory");

    // Prometheus' own linter: naming, units, help text.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus, or scripts/prereqs.sh)");
    use std::io::Write as _;
    promtool.stdin.take().unwrap().write_all(exposition.as_bytes()).unwrap();
    let linted = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&linted.stdout), String::from_utf8_lossy(&linted.stderr));
    assert!(linted.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");

    // A per-event series lives exactly as long as its event.
    let (_, created) = app.post("/admin/events", serde_json::json!({"name": "short-lived", "rows": 1, "seats_per_row": 5})).await;
    let series = format!("available_seats{{event_id=\"{}\"", created["event"]["id"]);
    assert!(scrape().await.lines().any(|line| line.starts_with(&series) && line.ends_with(" 5")), "{series} while the event exists");
    app.delete(&format!("/admin/events/{}", created["event"]["id"])).await;
    assert!(!scrape().await.contains(&series), "{series} outlived its event");
}
