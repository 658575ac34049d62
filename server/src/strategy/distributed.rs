//! `distributed`: one lock in one Redis, shared by every replica.
//!
//! Acquire with `SET key owner NX PX ttl`: only one request at a time gets
//! the key, on whichever replica it runs. Release deletes the key only if it
//! still holds our owner token, in one atomic step
//! ([`crate::redis_ops::release_if_owner`]).
//!
//! The weakness this lab shows: if the holder outlives the TTL (a long pause,
//! a slow payment), the key expires, a second request takes the lock, and both
//! write. The `fenced` and `etcd` strategies close that hole.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::lock::Lock;
use super::{Ctx, retry_until};
use crate::config::LockingConfig;
use crate::error::Result;
use crate::keys::Keys;
use crate::redis_ops::{release_if_owner, scan};

#[derive(Clone)]
pub(crate) struct RedisLock {
    pub(super) redis: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) ttl: Duration,
    pub(super) wait: Duration,
}

/// A held Redis lock: its key, and the owner token only this holder knows.
pub(crate) struct RedisHold {
    pub(super) key: String,
    pub(super) owner: String,
}

impl RedisLock {
    pub(crate) fn new(redis: ConnectionManager, keys: Keys, config: &LockingConfig) -> Self {
        Self { redis, keys, ttl: config.lock_ttl(), wait: config.lock_wait() }
    }

    /// Releases the lock if `hold` still owns it. A failure is only logged:
    /// the TTL frees the key anyway, and the booking already happened.
    pub(super) async fn release_hold(&self, hold: &RedisHold) {
        match release_if_owner(&mut self.redis.clone(), &hold.key, &hold.owner).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(key = hold.key, "lock had expired before release: another holder may have written"),
            Err(error) => tracing::warn!(key = hold.key, %error, "could not release lock; it expires with its TTL"),
        }
    }

    /// Deletes every lock and fencing counter of the event.
    pub(crate) async fn clear(&self, event_id: i64) -> Result<()> {
        let mut redis = self.redis.clone();
        for pattern in [self.keys.lock_pattern(event_id), self.keys.fence_pattern(event_id)] {
            let keys = scan(&mut redis, &pattern).await?;
            if !keys.is_empty() {
                let _: i64 = redis.del(keys).await?;
            }
        }
        Ok(())
    }
}

impl Lock for RedisLock {
    const KIND: &'static str = "redis";
    type Held = RedisHold;

    /// Tries `SET NX PX` until the configured wait has passed.
    async fn acquire(&self, ctx: &Ctx<'_>) -> Result<Option<RedisHold>> {
        let key = self.keys.lock(ctx.booking.event_id, &ctx.booking.seat_number);
        let owner = uuid::Uuid::new_v4().to_string();
        let ttl_ms = self.ttl.as_millis() as u64;
        let granted = retry_until(self.wait, || async {
            let mut redis = self.redis.clone();
            let set: Option<String> = redis::cmd("SET").arg(&key).arg(&owner).arg("NX").arg("PX").arg(ttl_ms).query_async(&mut redis).await?;
            Ok(set.map(|_| ()))
        })
        .await?;
        Ok(granted.map(|()| RedisHold { key, owner }))
    }

    async fn release(&self, held: RedisHold) {
        self.release_hold(&held).await;
    }
}
