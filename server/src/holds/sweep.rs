//! The sweep: every replica, every `SEAT_HOLD_SWEEP_MS`, writes expired
//! holds down as `expired` and frees the seats they still keep, in small
//! batches that skip rows someone has locked (the idempotency-key expiry
//! works the same way).
//!
//! Correctness never waits for it: a seat is free the moment its hold's
//! `expires_at` passes Postgres' `now()`, and a confirm judges expiry in its
//! own transaction. The sweep is what makes the seat map show it without
//! any request.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::live::{Change, Feed};
use crate::storage::holds;
use crate::storage::pipelined::{Conn, Pool};

/// Holds written down per statement.
const BATCH: i64 = 500;

/// Sweeps until `cancel` fires.
pub async fn run(db: Pool, feed: Feed, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep(&db, &feed).await {
            Ok(()) => failing = false,
            // Postgres is down: the holds expire all the same (by its clock),
            // and the next sweep after it comes back writes them down.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "could not sweep expired holds; retrying quietly");
            }
            Err(_) => {}
        }
    }
}

/// One sweep: batches until one comes back short.
async fn sweep(db: &Pool, feed: &Feed) -> anyhow::Result<()> {
    loop {
        let (expired, freed) = holds::sweep(&mut Conn::get(db).await?, BATCH).await?;
        for seat in freed {
            crate::metrics::hold_event("expired");
            feed.publish(Change::Freed { event_id: seat.event_id, seat_number: seat.seat_number, hold_id: seat.hold_id });
        }
        if expired < BATCH as usize {
            return Ok(());
        }
    }
}
