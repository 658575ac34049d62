//! Each replica's announcement of itself, and the list of live replicas.
//!
//! Every replica writes a small JSON record into one Redis hash on a fixed
//! interval and at once whenever it applies a new strategy. A record older
//! than three intervals belongs to a replica that is gone; `/admin/cluster`
//! leaves it out and deletes it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Applied;
use crate::activity::{Activity, LastMinute};
use crate::keys::Keys;
use crate::storage::pipelined::Pool;

/// One replica as the cluster sees it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Replica {
    pub instance_id: String,
    pub address: String,
    pub strategy: String,
    pub strategy_version: u64,
    pub started_at: i64,
    /// Milliseconds since the Unix epoch.
    pub last_seen: i64,
    /// This replica's booking pool: its share of the cluster's connection budget.
    #[serde(default)]
    pub booking_connections: usize,
    /// What this replica's bookings came to over the last minute, by its own count.
    #[serde(default)]
    pub last_minute: LastMinute,
}

pub struct Heartbeat {
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub instance_id: String,
    pub address: String,
    pub interval: Duration,
    /// Milliseconds since the Unix epoch.
    pub started_at: i64,
    pub activity: Arc<Activity>,
    pub booking_pool: Pool,
}

impl Heartbeat {
    /// Beats until `cancel` fires, then removes this replica's record.
    pub async fn run(self, mut applied: watch::Receiver<Applied>, cancel: CancellationToken) {
        let mut failing = false;
        loop {
            let current = *applied.borrow_and_update();
            match self.beat(current).await {
                Ok(()) if failing => {
                    tracing::info!("heartbeat restored");
                    failing = false;
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    tracing::warn!(%error, "heartbeat failed; retrying quietly");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.interval) => {}
                changed = applied.changed() => if changed.is_err() { break },
            }
        }
        let removed: redis::RedisResult<i64> = self.redis.clone().hdel(self.keys.replicas(), &self.instance_id).await;
        if let Err(error) = removed {
            tracing::warn!(%error, "could not remove this replica from the cluster register");
        }
    }

    /// Writes this replica's record once.
    pub async fn beat(&self, applied: Applied) -> anyhow::Result<()> {
        let record = Replica {
            instance_id: self.instance_id.clone(),
            address: self.address.clone(),
            strategy: applied.name.to_string(),
            strategy_version: applied.epoch,
            started_at: self.started_at,
            last_seen: Utc::now().timestamp_millis(),
            booking_connections: self.booking_pool.size(),
            last_minute: self.activity.last_minute(),
        };
        let _: i64 = self.redis.clone().hset(self.keys.replicas(), &self.instance_id, serde_json::to_string(&record)?).await?;
        Ok(())
    }
}

/// The replicas seen within three heartbeat intervals, sorted by instance id.
/// Older records are deleted.
pub async fn live_replicas(redis: &ConnectionManager, keys: &Keys, interval: Duration) -> redis::RedisResult<Vec<Replica>> {
    let mut redis = redis.clone();
    let records: Vec<(String, String)> = redis.hgetall(keys.replicas()).await?;
    let oldest = Utc::now().timestamp_millis() - 3 * interval.as_millis() as i64;
    let mut live = Vec::new();
    for (instance_id, json) in records {
        match serde_json::from_str::<Replica>(&json) {
            Ok(replica) if replica.last_seen >= oldest => live.push(replica),
            _ => {
                let _: i64 = redis.hdel(keys.replicas(), &instance_id).await?;
            }
        }
    }
    live.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    Ok(live)
}
