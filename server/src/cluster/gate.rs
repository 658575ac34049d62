//! The booking gate: one per replica, closed while the cluster switches.
//!
//! Every booking passes the gate before it reads the applied strategy, and
//! holds its [`Pass`] until it has finished. Closing the gate waits for every
//! pass to be given back (the in-flight bookings finish) while new bookings
//! queue in front of it; reopening lets them in under whatever the replica
//! applies by then. It is a `tokio::sync::RwLock<()>`: bookings are readers,
//! the switch is the one writer, and tokio's lock is fair, so once a switch
//! waits no new booking slips past it.
//!
//! The gate is what makes a switch cheap for the replicas that hear it; it is
//! not what makes it safe (the epoch check in every write is).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

#[derive(Default)]
pub struct Gate {
    lock: Arc<RwLock<()>>,
    /// When each booking that found the gate closed arrived: their pauses,
    /// measured when the gate reopens. std `Mutex`: never held across an await.
    queued: Mutex<Vec<Instant>>,
}

/// A booking's right to run; the gate cannot close until it is dropped.
pub struct Pass {
    _guard: OwnedRwLockReadGuard<()>,
}

/// The gate, closed: no booking runs on this replica until it is opened.
pub struct Closed<'a> {
    gate: &'a Gate,
    guard: OwnedRwLockWriteGuard<()>,
    since: Instant,
}

impl Gate {
    /// Waits while the gate is closed, then lets the booking in.
    pub async fn enter(&self) -> Pass {
        if let Ok(guard) = self.lock.clone().try_read_owned() {
            return Pass { _guard: guard };
        }
        let arrived = Instant::now();
        self.queued.lock().expect("gate queue poisoned").push(arrived);
        let guard = self.lock.clone().read_owned().await;
        crate::metrics::switch_pause(arrived.elapsed());
        Pass { _guard: guard }
    }

    /// Stops new bookings and waits for the ones in flight to finish. If the
    /// caller gives up waiting (drops the future), the gate stays open.
    pub async fn close(&self) -> Closed<'_> {
        let guard = self.lock.clone().write_owned().await;
        Closed { gate: self, guard, since: Instant::now() }
    }
}

/// What one closure of the gate cost the bookings that arrived during it.
#[derive(Debug, Clone)]
pub struct Pauses {
    /// How long the gate stayed closed after the last in-flight booking finished.
    pub closed: Duration,
    /// How long each booking that queued at the gate waited, drain included.
    pub waits: Vec<Duration>,
}

impl Closed<'_> {
    /// Reopens the gate and reports how long the queued bookings waited.
    pub fn open(self) -> Pauses {
        let now = Instant::now();
        let waits =
            std::mem::take(&mut *self.gate.queued.lock().expect("gate queue poisoned")).into_iter().map(|arrived| now - arrived).collect();
        let closed = now - self.since;
        drop(self.guard);
        Pauses { closed, waits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closing_waits_for_passes_and_holds_new_bookings_until_opened() {
        let gate = Arc::new(Gate::default());
        let in_flight = gate.enter().await;

        let closing = tokio::spawn({
            let gate = gate.clone();
            async move {
                let closed = gate.close().await;
                tokio::time::sleep(Duration::from_millis(30)).await;
                closed.open()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!closing.is_finished(), "the gate cannot close while a booking is in flight");

        // A booking that arrives now waits behind the pending close.
        let late = tokio::spawn({
            let gate = gate.clone();
            async move {
                let _pass = gate.enter().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!late.is_finished(), "a new booking must not slip past a waiting switch");

        drop(in_flight);
        let pauses = closing.await.unwrap();
        late.await.unwrap();
        assert_eq!(pauses.waits.len(), 1, "{pauses:?}");
        // It waited for the 20 ms drain and the 30 ms the gate stayed closed.
        assert!(pauses.waits[0] >= Duration::from_millis(45), "{pauses:?}");
        assert!(pauses.closed >= Duration::from_millis(30), "{pauses:?}");
    }

    #[tokio::test]
    async fn a_close_given_up_leaves_the_gate_open() {
        let gate = Gate::default();
        let in_flight = gate.enter().await;
        assert!(tokio::time::timeout(Duration::from_millis(20), gate.close()).await.is_err());
        // Not stuck behind the abandoned close:
        tokio::time::timeout(Duration::from_millis(20), gate.enter()).await.expect("gate open again");
        drop(in_flight);
    }
}
