//! The booking pool follows the cluster: `DATABASE_CONNECTION_BUDGET` is the
//! whole cluster's, each replica's pool is its share, and `scale` keeps the
//! total. Counted where it matters: the backends Postgres itself has open
//! for the booking path (`pg_stat_activity`, by `application_name`).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sqlx::PgPool;

use crate::harness::NativeCluster;

const BUDGET: usize = 12;

/// Each live replica's booking pool, as its heartbeat reports it, once the
/// shares add up to the budget among `replicas` replicas (at most 15 s).
async fn shares(cluster: &NativeCluster, replicas: usize) -> Vec<u64> {
    let client = cluster.client();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = client.get("/admin/cluster").await.expect("/admin/cluster");
        let shares: Vec<u64> =
            answer["replicas"].as_array().expect("replicas").iter().map(|replica| replica["booking_connections"].as_u64().unwrap_or(0)).collect();
        if shares.len() == replicas && shares.iter().sum::<u64>() == BUDGET as u64 {
            return shares;
        }
        assert!(Instant::now() < deadline, "the shares never settled on {BUDGET} among {replicas} replicas: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The booking path's backends in Postgres now.
async fn booking_backends(db: &PgPool) -> usize {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'booking-service % bookings'")
        .fetch_one(db)
        .await
        .expect("pg_stat_activity");
    count as usize
}

/// Sixty bookings of different seats at once, each keeping its connection
/// through the 200 ms hold (`pessimistic`), so every pool fills; returns the
/// most booking backends Postgres had open meanwhile, and the answers that
/// were not confirmed bookings.
async fn burst(cluster: &NativeCluster, db: &PgPool, round: usize) -> (usize, Vec<String>) {
    let client = cluster.client();
    let bookings = join_all((0..60).map(|i| {
        let client = client.clone();
        async move {
            let seat = format!("{}{}", ["A", "B", "C", "D", "E", "F"][i / 10], i % 10 + 1);
            match client.book(1, &seat, &format!("pool-{round}-{i}")).await {
                Ok(answer) if answer.outcome() == "confirmed" => None,
                Ok(answer) => Some(format!("{} {}", answer.status, answer.body)),
                Err(error) => Some(format!("{error:#}")),
            }
        }
    }));
    let watch = async {
        let mut most = 0;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            most = most.max(booking_backends(db).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        most
    };
    let (answers, most) = tokio::join!(bookings, watch);
    (most, answers.into_iter().flatten().collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replicas_share_one_budget_of_database_connections_through_scaling() {
    let cluster = NativeCluster::up_with(3, &[("DATABASE_CONNECTION_BUDGET", "12")]);
    let client = cluster.client();
    client.set_strategy("pessimistic").await.expect("strategy");
    let db = PgPool::connect(&cluster.database_url()).await.expect("the cluster's database");

    for (round, replicas) in [3, 5, 2].into_iter().enumerate() {
        if round > 0 {
            cluster.script(&["scale", &replicas.to_string()]);
        }
        let shares = shares(&cluster, replicas).await;
        let (fewest, most) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
        assert!(most - fewest <= 1, "{replicas} replicas share {BUDGET} evenly: {shares:?}");

        client.reset(1).await.expect("reset");
        let (backends, failures) = burst(&cluster, &db, round).await;
        assert!(failures.is_empty(), "{replicas} replicas: every booking of a free seat confirmed, but: {failures:?}");
        assert!(backends <= BUDGET, "{replicas} replicas held {backends} booking connections in Postgres, over the budget of {BUDGET}");
        // Sixty bookings of 200 ms each keep every pool full for a while.
        assert!(backends >= BUDGET - replicas, "{replicas} replicas: the burst filled the pools ({backends} of {BUDGET} backends)");
    }
}
