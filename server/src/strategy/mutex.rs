//! `mutex`: an in-process lock per seat.
//!
//! Requests for the same seat on the same replica queue behind one
//! `tokio::sync::Mutex`, so one replica never double-books. A second replica
//! has its own map and its own mutexes, knows nothing of the first's, and lets
//! its own request in at the same time: correct on one replica, wrong across
//! replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OwnedMutexGuard;
use tracing::Instrument;

use super::{Ctx, LockingStrategy, Outcome, SeatNumber};
use crate::error::Result;

type SeatKey = (i64, SeatNumber);

/// One async mutex per seat that someone is booking right now.
///
/// An entry lives only while a request holds or waits for it: the last guard
/// to drop removes it, so the map cannot grow without bound however many
/// seats are booked over time.
#[derive(Default)]
pub(crate) struct SeatMutexes {
    /// std `Mutex`, not tokio's: it only guards map look-ups, never an `.await`.
    seats: Arc<Mutex<HashMap<SeatKey, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Holds one seat's mutex; on drop, removes the entry if nobody else wants it.
struct SeatGuard {
    guard: Option<OwnedMutexGuard<()>>,
    key: SeatKey,
    seats: Arc<Mutex<HashMap<SeatKey, Arc<tokio::sync::Mutex<()>>>>>,
}

impl SeatMutexes {
    async fn lock(&self, key: SeatKey) -> SeatGuard {
        let mutex = {
            let mut seats = self.seats.lock().expect("seat map poisoned");
            seats.entry(key.clone()).or_default().clone()
        };
        let guard = mutex.lock_owned().await;
        SeatGuard { guard: Some(guard), key, seats: self.seats.clone() }
    }

    pub(crate) fn len(&self) -> usize {
        self.seats.lock().expect("seat map poisoned").len()
    }
}

impl Drop for SeatGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut seats = self.seats.lock().expect("seat map poisoned");
        // Only the map's own reference left: no holder, no waiter.
        if seats.get(&self.key).is_some_and(|mutex| Arc::strong_count(mutex) == 1) {
            seats.remove(&self.key);
        }
    }
}

impl LockingStrategy for SeatMutexes {
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome> {
        let started = Instant::now();
        let key = (ctx.booking.event_id, ctx.booking.seat_number.clone());
        let guard = self.lock(key).instrument(tracing::info_span!("lock.acquire", lock = "in-process mutex")).await;
        let acquired = Instant::now();
        crate::metrics::lock_acquired(ctx.strategy, acquired - started);
        let outcome = ctx.read_hold_write().await;
        drop(guard);
        crate::metrics::lock_held(ctx.strategy, acquired.elapsed());
        outcome
    }
}
