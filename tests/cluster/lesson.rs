//! The seed's exercise through nginx: ten concurrent bookings of seat A1.

use std::collections::BTreeSet;

use booking_lab::exercises::run_one;
use booking_server::domain::StrategyName;

use crate::harness::NativeCluster;

const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_shared_strategies_hold_across_three_replicas_and_mutex_holds_on_one() {
    let cluster = NativeCluster::up(3);
    let client = cluster.client();

    for strategy in StrategyName::ALL {
        for round in 0..ROUNDS {
            let exercise = run_one(&client, strategy, 1, "A1", 10).await.expect("exercise");
            let context = format!("{strategy}, round {round}: {exercise:?}");
            assert_eq!(exercise.errors, 0, "{context}");
            cluster.agrees_in_postgres(&exercise, 1, "A1").await;
            assert!(exercise.replicas.len() >= 2, "a burst is spread over replicas: {context}");
            match strategy {
                StrategyName::None | StrategyName::Mutex => {
                    assert!(exercise.holders >= 2, "must double-book across three replicas: {context}");
                    assert!(exercise.double_booked >= 1, "the answers tell the truth: {context}");
                }
                _ => {
                    assert_eq!(exercise.confirmed, 1, "{context}");
                    assert_eq!(exercise.double_booked, 0, "{context}");
                    assert_eq!(exercise.holders, 1, "{context}");
                }
            }
        }
    }

    cluster.script(&["scale", "1"]);
    for round in 0..ROUNDS {
        let exercise = run_one(&client, StrategyName::Mutex, 1, "A1", 10).await.expect("exercise");
        let context = format!("mutex on one replica, round {round}: {exercise:?}");
        cluster.agrees_in_postgres(&exercise, 1, "A1").await;
        assert_eq!(exercise.replicas.keys().collect::<Vec<_>>(), ["replica-1"], "{context}");
        assert_eq!(exercise.confirmed, 1, "{context}");
        assert_eq!(exercise.double_booked, 0, "{context}");
        assert_eq!(exercise.holders, 1, "{context}");
    }
}

#[tokio::test]
async fn a_strategy_set_through_one_replica_is_applied_on_every_replica() {
    let cluster = NativeCluster::up(3);

    for strategy in ["fenced", "optimistic"] {
        let answer = cluster.replica(2).set_strategy(strategy).await.expect("set through replica-2");
        assert_eq!(answer["switched"], serde_json::json!(["replica-1", "replica-2", "replica-3"]), "{answer}");

        // The switch answers once every replica has applied it: no waiting.
        for replica in 1..=3 {
            let applied = cluster.replica(replica).get("/admin/strategy").await.expect("strategy");
            assert_eq!(applied["strategy"], strategy, "replica-{replica} on its own port");
        }
        // Heartbeats announce the change at once, asynchronously.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let view = cluster.client().get("/admin/cluster").await.expect("cluster");
            let replicas = view["replicas"].as_array().expect("replicas");
            let ids: BTreeSet<_> = replicas.iter().map(|replica| replica["instance_id"].as_str().unwrap()).collect();
            if ids == BTreeSet::from(["replica-1", "replica-2", "replica-3"]) && replicas.iter().all(|replica| replica["strategy"] == strategy) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the cluster view never showed {strategy} everywhere: {view}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
