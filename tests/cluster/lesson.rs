//! The seed's exercise through nginx: ten concurrent bookings of seat A1.

use std::collections::BTreeSet;

use booking_service::lab::exercises::run_one;
use booking_service::strategy::StrategyName;

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
        cluster.replica(2).set_strategy(strategy).await.expect("set through replica-2");

        for replica in 1..=3 {
            let client = cluster.replica(replica);
            let mut applied = String::new();
            for _ in 0..100 {
                applied = client.get("/admin/strategy").await.expect("strategy")["strategy"].as_str().unwrap().to_owned();
                if applied == strategy {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(applied, strategy, "replica-{replica} on its own port");
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let view = cluster.client().get("/admin/cluster").await.expect("cluster");
        let replicas = view["replicas"].as_array().expect("replicas");
        let ids: BTreeSet<_> = replicas.iter().map(|replica| replica["instance_id"].as_str().unwrap()).collect();
        assert_eq!(ids, BTreeSet::from(["replica-1", "replica-2", "replica-3"]), "{view}");
        assert!(replicas.iter().all(|replica| replica["strategy"] == strategy), "{view}");
    }
}
