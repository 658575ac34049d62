//! One lock abstraction for the five lock strategies (`mutex`,
//! `distributed`, `redlock`, `fenced`, `etcd`), and the one function that
//! books under any of them.
//!
//! A [`Lock`] only knows how to take and give back one seat's lock, and
//! whether a grant carries a fencing token. [`book_under`] owns everything
//! else, the same for every lock: the spans, timing the acquisition, the
//! `lock_busy` refusal when someone else held the lock throughout, the
//! metrics, running the booking (fenced when the grant has a token), and the
//! release, whatever the booking did.

use std::time::Instant;

use tracing::Instrument;

use super::toolkit::{Ctx, Outcome, Refusal};
use crate::error::Result;

/// A lock on one seat, held across the read, the hold and the write.
pub(crate) trait Lock: Send + Sync {
    /// What this lock is, in the `lock.acquire` and `lock.release` spans.
    const KIND: &'static str;

    /// Proof of holding the lock, handed back to [`Lock::release`].
    type Held: Send;

    /// Takes the lock on `ctx`'s seat, trying for at most the configured
    /// wait. `Ok(None)`: someone else held it throughout. An error when the
    /// lock service itself cannot answer (a 503 that names it).
    async fn acquire(&self, ctx: &Ctx<'_>) -> Result<Option<Self::Held>>;

    /// The fencing token this grant carries, for a lock that mints them.
    fn token(_held: &Self::Held) -> Option<i64> {
        None
    }

    /// Gives the lock back. It cannot fail the booking, which has already
    /// happened: a lock that cannot be released expires on its own, and the
    /// lock says so in the log.
    async fn release(&self, held: Self::Held);
}

/// Books `ctx`'s seat while holding `lock`: acquire (or refuse `lock_busy`),
/// read, hold and write (stamping the seat with the grant's fencing token if
/// it has one), release.
pub(crate) async fn book_under<L: Lock>(lock: &L, ctx: &Ctx<'_>) -> Result<Outcome> {
    let started = Instant::now();
    let held = lock.acquire(ctx).instrument(tracing::info_span!("lock.acquire", lock = L::KIND)).await?;
    let Some(held) = held else {
        crate::metrics::lock_contended(ctx.strategy);
        return ctx.refuse_unread(Refusal::LockBusy).await;
    };
    let acquired = Instant::now();
    crate::metrics::lock_acquired(ctx.strategy, acquired - started);
    let outcome = match L::token(&held) {
        Some(token) => ctx.read_fence_hold_write(token).await,
        None => ctx.read_hold_write().await,
    };
    lock.release(held).instrument(tracing::info_span!("lock.release", lock = L::KIND)).await;
    crate::metrics::lock_held(ctx.strategy, acquired.elapsed());
    outcome
}
