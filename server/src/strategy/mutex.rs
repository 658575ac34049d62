//! `mutex`: an in-process lock per seat.
//!
//! Requests for the same seat on the same replica queue behind one
//! `tokio::sync::Mutex`, so one replica never double-books. A second replica
//! has its own map and its own mutexes, knows nothing of the first's, and lets
//! its own request in at the same time: correct on one replica, wrong across
//! replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

use super::lock::Lock;
use super::{Ctx, SeatNumber};
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
pub(crate) struct SeatGuard {
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

impl Lock for SeatMutexes {
    const KIND: &'static str = "in-process mutex";
    type Held = SeatGuard;

    /// Waits for the seat's mutex on this replica; never busy, never down.
    async fn acquire(&self, ctx: &Ctx<'_>) -> Result<Option<SeatGuard>> {
        Ok(Some(self.lock((ctx.booking.event_id, ctx.booking.seat_number.clone())).await))
    }

    async fn release(&self, held: SeatGuard) {
        drop(held);
    }
}
