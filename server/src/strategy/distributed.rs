//! `distributed`: one lock in one Redis, shared by every replica.
//!
//! Acquire with `SET key token NX PX ttl`: only one request at a time gets the
//! key, on whichever replica it runs. Release with a Lua script that deletes
//! the key only if it still holds our token, in one atomic step; a GET followed
//! by a DEL could delete a lock that expired and was taken by someone else in
//! between.
//!
//! The weakness this lab shows: if the holder outlives the TTL (a long pause,
//! a slow payment), the key expires, a second request takes the lock, and both
//! write. The `fenced` strategy closes that hole.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use tracing::Instrument;

use super::{Ctx, LockingStrategy, Outcome, Refusal, retry_until};
use crate::config::LockingConfig;
use crate::error::Result;
use crate::keys::Keys;

/// Deletes the lock only if it still holds the caller's token.
pub(crate) const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"#;

#[derive(Clone)]
pub(crate) struct RedisLock {
    pub(super) redis: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) ttl: Duration,
    pub(super) wait: Duration,
}

impl RedisLock {
    pub(crate) fn new(redis: ConnectionManager, keys: Keys, config: &LockingConfig) -> Self {
        Self { redis, keys, ttl: config.lock_ttl(), wait: config.lock_wait() }
    }

    /// Tries for the lock until the configured wait has passed; `None` when
    /// someone else held it throughout.
    async fn acquire(&self, key: &str) -> Result<Option<String>> {
        let token = uuid::Uuid::new_v4().to_string();
        let ttl_ms = self.ttl.as_millis() as u64;
        retry_until(self.wait, || async {
            let mut redis = self.redis.clone();
            let granted: bool = redis::cmd("SET")
                .arg(key)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<Option<String>>(&mut redis)
                .await?
                .is_some();
            Ok(granted.then(|| token.clone()))
        })
        .await
    }

    /// Releases the lock if `token` still owns it. A failure is only logged:
    /// the TTL frees the key anyway, and the booking already happened.
    pub(super) async fn release(&self, key: &str, token: &str) {
        let mut redis = self.redis.clone();
        let released: redis::RedisResult<i64> = Script::new(RELEASE).key(key).arg(token).invoke_async(&mut redis).await;
        match released {
            Ok(1) => {}
            Ok(_) => tracing::warn!(key, "lock had expired before release: another holder may have written"),
            Err(error) => tracing::warn!(key, %error, "could not release lock; it expires with its TTL"),
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

/// Every key matching `pattern`, found with SCAN (never KEYS, which blocks Redis).
pub(super) async fn scan<C: redis::aio::ConnectionLike + Send + Sync>(redis: &mut C, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let mut keys = redis.scan_match::<_, String>(pattern).await?;
    while let Some(key) = keys.next_item().await {
        found.push(key?);
    }
    Ok(found)
}

impl LockingStrategy for RedisLock {
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome> {
        let key = self.keys.lock(ctx.booking.event_id, &ctx.booking.seat_number);
        let started = Instant::now();
        let Some(token) = self.acquire(&key).instrument(tracing::info_span!("lock.acquire", lock = "redis")).await? else {
            crate::metrics::lock_contended(ctx.strategy);
            return ctx.refuse_unread(Refusal::LockBusy).await;
        };
        let acquired = Instant::now();
        crate::metrics::lock_acquired(ctx.strategy, acquired - started);
        let outcome = ctx.read_hold_write().await;
        self.release(&key, &token).instrument(tracing::info_span!("lock.release", lock = "redis")).await;
        crate::metrics::lock_held(ctx.strategy, acquired.elapsed());
        outcome
    }
}
