//! `redlock`: one lock over several independent Redis nodes (rslock).
//!
//! A request holds the lock when a majority of the nodes granted it within the
//! lock's validity time, so the lab keeps booking while a minority of nodes is
//! down, and refuses with 503 (writing nothing) once a majority is gone.
//!
//! rslock's `acquire()` retries forever when no quorum is reachable, so this
//! module only uses the bounded `lock()` under a deadline of its own, and
//! always attempts the release, whatever the booking did.

use std::time::Duration;

use rslock::{LockError, LockManager};

use super::Ctx;
use super::lock::Lock;
use crate::config::LockingConfig;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::redis_ops::scan;

/// Pause between two rounds of asking every node, when a lock wait is configured.
const RETRY_DELAY: Duration = Duration::from_millis(50);
/// How long one node may take to answer a PING, a release or a clean-up.
const NODE_TIMEOUT: Duration = Duration::from_millis(500);

pub(crate) struct Redlock {
    manager: LockManager,
    /// The same nodes, for health probes and clean-up (rslock exposes neither).
    nodes: Vec<redis::Client>,
    keys: Keys,
    ttl: Duration,
    /// How long one acquisition may take in total, all rounds included.
    deadline: Duration,
}

impl Redlock {
    pub(crate) fn new(urls: &[String], keys: Keys, config: &LockingConfig) -> anyhow::Result<Self> {
        let nodes = urls.iter().map(|url| redis::Client::open(url.as_str())).collect::<Result<Vec<_>, _>>()?;
        let mut manager = LockManager::from_clients(nodes.clone());
        // At least two rounds: a node that just came back is reconnected by a
        // failed first round and votes in the second. The delay must be
        // non-zero (rslock draws a random pause below it).
        let rounds = 2 + (config.lock_wait().as_millis() / RETRY_DELAY.as_millis()) as u32;
        manager.set_retry(rounds, RETRY_DELAY);
        let deadline = config.lock_wait() + NODE_TIMEOUT * 2;
        Ok(Self { manager, nodes, keys, ttl: config.lock_ttl(), deadline })
    }

    fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// How many nodes answer PING right now.
    pub(crate) async fn reachable_nodes(&self) -> usize {
        let pings = self.nodes.iter().map(|node| async move {
            let ping = async {
                let mut conn = node.get_multiplexed_async_connection_with_config(&node_config()).await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            matches!(tokio::time::timeout(NODE_TIMEOUT, ping).await, Ok(Ok(_)))
        });
        futures_util::future::join_all(pings).await.into_iter().filter(|up| *up).count()
    }

    /// Lock refused: busy (`Ok(None)`) if a quorum is reachable (someone
    /// else holds it), otherwise the lock service itself is unavailable.
    async fn refused(&self) -> Result<Option<rslock::Lock>> {
        let reachable = self.reachable_nodes().await;
        crate::metrics::redlock_nodes_reachable(reachable);
        if reachable < self.quorum() {
            return Err(Error::Unavailable {
                what: "redlock",
                detail: format!("only {reachable} of {} Redis nodes reachable, {} needed", self.nodes.len(), self.quorum()),
            });
        }
        Ok(None)
    }

    /// Deletes the event's Redlock keys on every node that answers.
    pub(crate) async fn clear(&self, event_id: i64) -> Result<()> {
        let pattern = self.keys.redlock_pattern(event_id);
        for node in &self.nodes {
            let cleared = tokio::time::timeout(NODE_TIMEOUT, async {
                let mut conn = node.get_multiplexed_async_connection_with_config(&node_config()).await?;
                let keys = scan(&mut conn, &pattern).await?;
                if !keys.is_empty() {
                    redis::cmd("DEL").arg(keys).query_async::<i64>(&mut conn).await?;
                }
                redis::RedisResult::Ok(())
            })
            .await;
            if !matches!(cleared, Ok(Ok(()))) {
                tracing::warn!(node = %node.get_connection_info().addr(), "could not clear redlock keys; they expire with their TTL");
            }
        }
        Ok(())
    }
}

fn node_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(NODE_TIMEOUT))
        .set_response_timeout(Some(NODE_TIMEOUT))
}

impl Lock for Redlock {
    const KIND: &'static str = "redlock";
    type Held = rslock::Lock;

    async fn acquire(&self, ctx: &Ctx<'_>) -> Result<Option<rslock::Lock>> {
        let resource = self.keys.redlock(ctx.booking.event_id, &ctx.booking.seat_number);
        match tokio::time::timeout(self.deadline, self.manager.lock(resource.as_bytes(), self.ttl)).await {
            Ok(Ok(lock)) => Ok(Some(lock)),
            Ok(Err(LockError::Unavailable | LockError::TtlExceeded)) | Err(_) => self.refused().await,
            Ok(Err(error)) => Err(anyhow::Error::new(error).context("redlock acquisition failed").into()),
        }
    }

    async fn release(&self, held: rslock::Lock) {
        if tokio::time::timeout(NODE_TIMEOUT, self.manager.unlock(&held)).await.is_err() {
            tracing::warn!(resource = %String::from_utf8_lossy(&held.resource), "redlock release timed out; the lock expires with its TTL");
        }
    }
}
