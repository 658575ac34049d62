//! What a user watches: a real Prometheus scraping the native cluster (every
//! dashboard query answers, one series per replica, following `scale`), and
//! traces reaching a real OTLP endpoint through nginx.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use booking_lab::exercises;
use booking_server::strategy::StrategyName;
use serde_json::Value;

use crate::harness::NativeCluster;
use crate::otlp::OtlpReceiver;

/// One query of the dashboard, with the variables Grafana would fill in.
struct PanelQuery {
    panel: String,
    expr: String,
    legend: String,
}

fn dashboard_queries() -> Vec<PanelQuery> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards/booking-lab.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            queries.push(PanelQuery {
                panel: panel["title"].as_str().unwrap().to_owned(),
                expr: target["expr"].as_str().unwrap().replace("$__rate_interval", "1m").replace("$instance", ".*"),
                legend: target["legendFormat"].as_str().unwrap_or("").to_owned(),
            });
        }
    }
    queries
}

async fn prometheus_query(cluster: &NativeCluster, expr: &str) -> Vec<Value> {
    let response: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/query", cluster.prometheus_url))
        .query(&[("query", expr)])
        .send()
        .await
        .expect("prometheus answers")
        .json()
        .await
        .expect("prometheus JSON");
    assert_eq!(response["status"], "success", "{expr}: {response}");
    response["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// Every query's problem, or nothing when all answer as a user expects
/// with `replicas` replicas behind the load balancer.
async fn dashboard_problems(cluster: &NativeCluster, replicas: usize) -> Vec<String> {
    let mut problems = Vec::new();
    for query in dashboard_queries() {
        let series = prometheus_query(cluster, &query.expr).await;
        let instances: BTreeSet<_> = series.iter().filter_map(|s| s["metric"]["instance"].as_str().map(str::to_owned)).collect();
        // The `instance` label is the replica's X-Instance-Id, not host:port.
        let expected: BTreeSet<_> = (1..=replicas).map(|i| format!("replica-{i}")).collect();
        if series.is_empty() {
            problems.push(format!("{}: no data for {}", query.panel, query.expr));
        } else if query.panel.contains("per replica") && instances != expected {
            problems.push(format!("{}: replicas {instances:?}, expected {expected:?}", query.panel));
        } else if query.legend == "{{instance}}" && series.len() != replicas {
            problems.push(format!("{}: {} series, expected one per replica ({replicas})", query.panel, series.len()));
        }
    }
    problems
}

/// Load that touches every strategy on every replica.
async fn exercise_every_strategy(cluster: &NativeCluster) {
    let client = cluster.client();
    exercises::run(&client, &StrategyName::ALL, 1, "A1", 12).await.expect("exercises");
}

async fn wait_for_dashboard(cluster: &NativeCluster, replicas: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        exercise_every_strategy(cluster).await;
        let problems = dashboard_problems(cluster, replicas).await;
        if problems.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "with {replicas} replicas:\n{}", problems.join("\n"));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_answers_with_one_series_per_replica_and_follows_scaling() {
    let cluster = NativeCluster::up_with(3, &[("START_PROMETHEUS", "yes"), ("HOLD_MS", "20")]);

    wait_for_dashboard(&cluster, 3).await;

    cluster.script(&["scale", "5"]);
    wait_for_dashboard(&cluster, 5).await;
    let targets = prometheus_query(&cluster, "up == 1").await;
    assert_eq!(targets.len(), 5, "Prometheus found the new replicas through file_sd: {targets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_sent_through_nginx_reaches_the_collector_with_the_serving_replica() {
    let receiver = OtlpReceiver::start().await;
    let cluster = NativeCluster::up_with(
        2,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "200")],
    );
    cluster.client().set_strategy("distributed").await.expect("strategy");
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";

    let response = reqwest::Client::new()
        .post(format!("{}/book", cluster.lb_url))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&serde_json::json!({"event_id": 1, "seat_number": "B2", "customer_id": "traced"}))
        .send()
        .await
        .expect("book");
    assert_eq!(response.status(), 200);
    let instance = response.headers()["x-instance-id"].to_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans = receiver.spans_of_trace(&trace_id);
        if spans.iter().any(|span| span.name == "POST /book") && spans.iter().any(|span| span.name == "lock.release") {
            break spans;
        }
        assert!(Instant::now() < deadline, "the trace never arrived; got {spans:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let request = spans.iter().find(|span| span.name == "POST /book").unwrap();
    assert_eq!(request.parent_span_id, caller_span, "the replica's span is a child of the caller's");
    for span in &spans {
        assert_eq!(span.attributes["service.instance.id"], instance, "{span:?}");
        assert_eq!(span.attributes["service.name"], "booking-service");
    }
    let names: BTreeSet<_> = spans.iter().map(|span| span.name.as_str()).collect();
    for expected in ["book", "lock.acquire", "lock.release", "db.read_seat", "db.commit_booking", "payment"] {
        assert!(names.contains(expected), "no {expected} span in {names:?}");
    }
    let book = spans.iter().find(|span| span.name == "book").unwrap();
    assert_eq!(book.attributes["strategy"], "distributed");
    assert_eq!(book.attributes["seat"], "B2");
    assert_eq!(book.attributes["customer"], "traced");
    assert_eq!(book.attributes["instance"], instance);

    // The collector goes away: the replicas keep serving and each says so once.
    receiver.stop();
    let client = cluster.client();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        let answer = client.book(1, "C3", "after-collector").await.expect("book");
        assert_ne!(answer.outcome(), "error", "{answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for replica in ["replica-1", "replica-2"] {
        let log = cluster.script(&["logs", replica]);
        let warnings = log.lines().filter(|line| line.contains("cannot export traces")).count();
        assert_eq!(warnings, 1, "{replica} should warn exactly once:\n{log}");
    }
}

/// The value of one series on one replica's own /metrics (0 when absent).
async fn series_value(cluster: &NativeCluster, replica: u16, name: &str, labels: &[&str]) -> (f64, String) {
    let url = format!("http://127.0.0.1:{}/metrics", cluster.replica_port_base + replica - 1);
    let text = reqwest::get(url).await.expect("metrics").text().await.expect("text");
    let value = text
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    (value, text)
}

#[tokio::test]
async fn each_replica_counts_its_own_bookings_under_its_own_label() {
    let cluster = NativeCluster::up(2);
    cluster.client().set_strategy("none").await.expect("none");
    let confirmed = ["strategy=\"none\"", "status=\"confirmed\""];
    let taken = ["strategy=\"none\"", "reason=\"seat_taken\""];
    let before = [
        series_value(&cluster, 1, "bookings_total", &confirmed).await.0,
        series_value(&cluster, 2, "bookings_total", &confirmed).await.0,
    ];

    let booked = cluster.replica(2).book(1, "J1", "served-by-two").await.expect("book");
    assert_eq!(booked.instance.as_deref(), Some("replica-2"));
    let refused = cluster.replica(1).book(1, "J1", "served-by-one").await.expect("book");
    assert_eq!(refused.body["reason"], "seat_taken", "{:?}", refused.body);

    for replica in [1, 2] {
        let (_, text) = series_value(&cluster, replica, "bookings_total", &[]).await;
        let labelled: Vec<&str> = text.lines().filter(|line| !line.starts_with('#') && line.contains("instance=")).collect();
        assert!(!labelled.is_empty());
        let wrong: Vec<&&str> = labelled.iter().filter(|line| !line.contains(&format!("instance=\"replica-{replica}\""))).collect();
        assert!(wrong.is_empty(), "replica-{replica} labels every series with its own name: {wrong:?}");
    }
    assert_eq!(series_value(&cluster, 2, "bookings_total", &confirmed).await.0, before[1] + 1.0, "replica-2 counted its booking");
    assert_eq!(series_value(&cluster, 1, "bookings_total", &confirmed).await.0, before[0], "replica-1 did not count replica-2's booking");
    assert_eq!(series_value(&cluster, 1, "booking_failures_total", &taken).await.0, 1.0, "replica-1 counted its refusal");
    assert_eq!(series_value(&cluster, 2, "booking_failures_total", &taken).await.0, 0.0);
}
