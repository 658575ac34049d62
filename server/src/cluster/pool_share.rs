//! The booking pool follows the cluster, not the replica.
//!
//! Postgres does its best work with a number of backends set by its cores
//! and its disk, not by how many replicas talk to it: every backend beyond
//! that adds to the cost of snapshots, lock queues and context switches
//! without adding throughput (`docs/pool.md` measures where that is). So
//! the booking connections
//! are one budget for the whole cluster (`DATABASE_CONNECTION_BUDGET`),
//! and each replica's pool is its share: the budget divided among the
//! replicas whose heartbeat is fresh, the remainder going one each to the
//! first replicas by instance id, so the shares add up to the budget
//! exactly. A replica that joins takes its share at once; the others give
//! theirs up within a heartbeat interval. A replica that leaves hands its
//! share back once its heartbeat goes stale (three intervals).

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::heartbeat::{Replica, live_replicas};
use crate::keys::Keys;
use crate::storage::pipelined::Pool;

/// This replica's share of `budget` connections among the `live` replicas
/// (sorted by instance id), counting itself in even when its own heartbeat
/// is missing from them; and how many replicas share.
pub fn share(budget: usize, live: &[Replica], instance_id: &str) -> (usize, usize) {
    let (replicas, position) = match live.iter().position(|replica| replica.instance_id == instance_id) {
        Some(position) => (live.len(), position),
        None => (live.len() + 1, live.len()),
    };
    let extra = usize::from(position < budget % replicas);
    ((budget / replicas + extra).max(1), replicas)
}

/// Sizes `pool` to this replica's share as the cluster is now; returns
/// whether that changed its size.
pub async fn apply(pool: &Pool, follow: &Follow) -> anyhow::Result<bool> {
    let live = live_replicas(&follow.redis, &follow.keys, follow.interval).await?;
    let (size, replicas) = share(follow.budget, &live, &follow.instance_id);
    crate::metrics::booking_pool_size(size);
    let changed = pool.resize(size)?;
    if changed {
        tracing::info!(connections = size, budget = follow.budget, replicas, "booking pool resized to this replica's share");
    }
    Ok(changed)
}

/// What [`run`] needs to find this replica's share.
pub struct Follow {
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub instance_id: String,
    pub interval: Duration,
    pub budget: usize,
}

/// Re-sizes `pool` every heartbeat interval until `cancel` fires. While
/// Redis cannot be read, the pool keeps its size.
pub async fn run(pool: Pool, follow: Follow, cancel: CancellationToken) {
    let mut failing = false;
    loop {
        match apply(&pool, &follow).await {
            Ok(_) => failing = false,
            Err(error) if !failing => {
                tracing::warn!(%error, "cannot read the cluster's replicas; the booking pool keeps its size");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(follow.interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(ids: &[&str]) -> Vec<Replica> {
        ids.iter()
            .map(|id| Replica {
                instance_id: id.to_string(),
                address: String::new(),
                strategy: "none".into(),
                strategy_version: 0,
                started_at: 0,
                last_seen: 0,
                booking_connections: 0,
                last_minute: Default::default(),
            })
            .collect()
    }

    #[test]
    fn the_shares_add_up_to_the_budget() {
        for count in 1..=7 {
            let ids: Vec<String> = (1..=count).map(|i| format!("replica-{i}")).collect();
            let names: Vec<&str> = ids.iter().map(String::as_str).collect();
            let live = replicas(&names);
            for budget in [8, 12, 24, 25] {
                let total: usize = names.iter().map(|id| share(budget, &live, id).0).sum();
                assert_eq!(total, budget, "{count} replicas sharing {budget}");
            }
        }
    }

    #[test]
    fn the_remainder_goes_to_the_first_replicas() {
        let live = replicas(&["a", "b", "c"]);
        assert_eq!([share(8, &live, "a"), share(8, &live, "b"), share(8, &live, "c")], [(3, 3), (3, 3), (2, 3)]);
    }

    #[test]
    fn a_replica_missing_from_the_register_counts_itself_in() {
        assert_eq!(share(8, &replicas(&["a"]), "b"), (4, 2));
        assert_eq!(share(8, &[], "a"), (8, 1));
    }

    #[test]
    fn every_replica_gets_a_connection_when_the_budget_is_smaller_than_the_cluster() {
        let live = replicas(&["a", "b", "c"]);
        assert_eq!(share(2, &live, "c"), (1, 3));
    }
}
