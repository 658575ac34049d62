//! `fenced`: a Redis lock whose every grant carries a fencing token.
//!
//! One Lua script takes the lock (`SET NX PX`) and, in the same atomic step,
//! increments the seat's token counter: tokens are strictly increasing, so a
//! later holder always has a larger one. The holder first stamps its token on
//! the seat row (only if it is newer than the one there), and its final write
//! only succeeds while that stamp is still its own.
//!
//! A holder that paused past its TTL finds a newer token on the seat when it
//! wakes, and writes nothing: the storage itself refuses the stale lock holder,
//! which a lock alone cannot do.

use std::time::Instant;

use redis::Script;
use tracing::Instrument;

use super::distributed::RedisLock;
use super::{Ctx, LockingStrategy, Outcome, Refusal, retry_until};
use crate::error::Result;
use crate::storage::pipelined::Conn;
use crate::storage::{self, SeatCondition};

/// Takes the lock and mints the next token atomically; nil when the lock is held.
const ACQUIRE: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return redis.call('INCR', KEYS[2])
end
return false
"#;

pub(crate) struct FencedLock {
    lock: RedisLock,
}

impl FencedLock {
    pub(crate) fn new(lock: RedisLock) -> Self {
        Self { lock }
    }

    /// Returns the lock's owner token and its fencing token.
    async fn acquire(&self, key: &str, fence_key: &str) -> Result<Option<(String, i64)>> {
        let owner = uuid::Uuid::new_v4().to_string();
        let ttl_ms = self.lock.ttl.as_millis() as u64;
        let script = Script::new(ACQUIRE);
        retry_until(self.lock.wait, || async {
            let mut redis = self.lock.redis.clone();
            let token: Option<i64> = script.key(key).key(fence_key).arg(&owner).arg(ttl_ms).invoke_async(&mut redis).await?;
            Ok(token.map(|token| (owner.clone(), token)))
        })
        .await
    }

    async fn book_with_token(&self, ctx: &Ctx<'_>, token: i64) -> Result<Outcome> {
        let mut conn = Conn::get(ctx.db).await?;
        let seat = ctx.seat(&mut conn).await?;
        let attempt = storage::Attempt { fencing_token: Some(token), ..ctx.attempt(seat.id) };
        let Some(seat) = storage::fence_seat(&mut conn, seat.id, token).await? else {
            crate::metrics::fencing_rejected(ctx.strategy);
            return ctx.refuse_with(&mut conn, attempt, Refusal::StaleToken).await;
        };
        if seat.is_booked {
            return ctx.taken(&mut conn, attempt, &seat).await;
        }
        drop(conn);
        ctx.hold().await;
        let mut tx = Conn::begin(ctx.db).await?;
        match ctx.commit_booking(&mut tx, attempt, SeatCondition::FencingToken(token)).await? {
            Some(outcome) => Ok(outcome),
            // A newer token touched the seat: nothing was written.
            None => {
                crate::metrics::fencing_rejected(ctx.strategy);
                ctx.refuse_with(&mut tx, attempt, Refusal::StaleToken).await
            }
        }
    }
}

impl LockingStrategy for FencedLock {
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome> {
        let keys = &self.lock.keys;
        let key = keys.lock(ctx.booking.event_id, &ctx.booking.seat_number);
        let fence_key = keys.fence(ctx.booking.event_id, &ctx.booking.seat_number);
        let started = Instant::now();
        let acquire = self.acquire(&key, &fence_key).instrument(tracing::info_span!("lock.acquire", lock = "redis+fence"));
        let Some((owner, token)) = acquire.await? else {
            crate::metrics::lock_contended(ctx.strategy);
            return ctx.refuse_unread(Refusal::LockBusy).await;
        };
        let acquired = Instant::now();
        crate::metrics::lock_acquired(ctx.strategy, acquired - started);
        let outcome = self.book_with_token(ctx, token).await;
        self.lock.release(&key, &owner).instrument(tracing::info_span!("lock.release", lock = "redis+fence")).await;
        crate::metrics::lock_held(ctx.strategy, acquired.elapsed());
        outcome
    }
}
