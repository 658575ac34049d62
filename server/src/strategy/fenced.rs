//! `fenced`: a Redis lock whose every grant carries a fencing token.
//!
//! One Lua script takes the lock (`SET NX PX`) and, in the same atomic step,
//! increments the seat's token counter: tokens are strictly increasing, so a
//! later holder always has a larger one. The holder stamps its token on the
//! seat row (only if it is newer than the one there), and its final write
//! only succeeds while that stamp is still its own (see
//! [`super::toolkit::Ctx::read_fence_hold_write`]).
//!
//! The counter lives in Redis' memory, which a restart empties. Counting
//! again from 1 would leave every seat stamped with a higher token refusing
//! each new holder (`stale_token`) until the counter caught up: safe, but
//! stuck. So a counter that is missing is first seeded from the token the
//! seat row holds, the one durable record of how far the count had got.
//! (`etcd` needs no such repair: its revisions survive a restart.)

use redis::Script;

use super::distributed::{RedisHold, RedisLock};
use super::lock::Lock;
use super::{Ctx, retry_until};
use crate::error::Result;
use crate::storage::pipelined::Conn;

/// Takes the lock and mints the next token atomically. Nil when the lock is
/// held; 0 when it was granted but the seat's counter is missing (never
/// used, or Redis restarted) and must be seeded first.
const ACQUIRE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    if redis.call('EXISTS', KEYS[2]) == 1 then
        return redis.call('INCR', KEYS[2])
    end
    return 0
end
return false
"#;

/// Seeds a missing counter with the seat row's token, then mints the next.
const SEED_AND_MINT: &str = r#"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"#;

pub(crate) struct FencedLock {
    lock: RedisLock,
}

/// A held fenced lock: the Redis lock, and the token this grant minted.
pub(crate) struct FencedHold {
    lock: RedisHold,
    token: i64,
}

impl FencedLock {
    pub(crate) fn new(lock: RedisLock) -> Self {
        Self { lock }
    }

    /// The next token after the seat row's, for a counter Redis lost.
    async fn seed(&self, ctx: &Ctx<'_>, fence_key: &str) -> Result<i64> {
        let stamped = ctx.seat(&mut Conn::get(ctx.db).await?).await?.fencing_token;
        tracing::info!(fence_key, stamped, "fencing counter missing: seeding it from the seat row");
        Ok(Script::new(SEED_AND_MINT).key(fence_key).arg(stamped).invoke_async(&mut self.lock.redis.clone()).await?)
    }
}

impl Lock for FencedLock {
    const KIND: &'static str = "redis+fence";
    type Held = FencedHold;

    async fn acquire(&self, ctx: &Ctx<'_>) -> Result<Option<FencedHold>> {
        let (event_id, seat) = (ctx.booking.event_id, &ctx.booking.seat_number);
        let key = self.lock.keys.lock(event_id, seat);
        let fence_key = self.lock.keys.fence(event_id, seat);
        let owner = uuid::Uuid::new_v4().to_string();
        let ttl_ms = self.lock.ttl.as_millis() as u64;
        let script = Script::new(ACQUIRE);
        let minted = retry_until(self.lock.wait, || async {
            let mut redis = self.lock.redis.clone();
            let token: Option<i64> = script.key(&key).key(&fence_key).arg(&owner).arg(ttl_ms).invoke_async(&mut redis).await?;
            Ok(token)
        })
        .await?;
        let Some(token) = minted else { return Ok(None) };
        let lock = RedisHold { key, owner };
        let token = match token {
            0 => match self.seed(ctx, &fence_key).await {
                Ok(token) => token,
                Err(error) => {
                    self.lock.release_hold(&lock).await;
                    return Err(error);
                }
            },
            token => token,
        };
        Ok(Some(FencedHold { lock, token }))
    }

    fn token(held: &FencedHold) -> Option<i64> {
        Some(held.token)
    }

    async fn release(&self, held: FencedHold) {
        self.lock.release_hold(&held.lock).await;
    }
}
