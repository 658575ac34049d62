//! `pessimistic`: `SELECT … FOR UPDATE` in one transaction.
//!
//! The first transaction to read the seat locks its row; every other
//! transaction for that seat waits in Postgres until the first commits, then
//! reads the seat as booked. The database is the lock, so it holds across any
//! number of replicas.

use std::time::Instant;

use super::{Ctx, LockingStrategy, Outcome, Refusal};
use crate::error::{Result, is_lock_timeout};
use crate::storage::pipelined::Conn;
use crate::storage::{self, SeatCondition};

pub(crate) struct RowLock;

impl LockingStrategy for RowLock {
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome> {
        // BEGIN goes to Postgres together with the SELECT … FOR UPDATE.
        let mut tx = Conn::begin(ctx.db).await?;
        let started = Instant::now();
        let seat = match storage::seat_for_update(&mut tx, ctx.booking.event_id, &ctx.booking.seat_number).await {
            Ok(seat) => seat,
            // The row lock stayed held past DATABASE_LOCK_TIMEOUT_MS (its
            // holder is paused or stuck): a bounded wait, then `lock_busy`.
            Err(error) if is_lock_timeout(&error) => {
                drop(tx);
                crate::metrics::lock_contended(ctx.strategy);
                return ctx.refuse_unread(Refusal::LockBusy).await;
            }
            Err(error) => return Err(error.into()),
        };
        let acquired = Instant::now();
        crate::metrics::lock_acquired(ctx.strategy, acquired - started);
        let Some(seat) = seat else {
            return Err(ctx.seat_not_found().await);
        };
        if let Some(outcome) = ctx.unavailable(&mut tx, ctx.attempt(seat.id), &seat).await? {
            tx.commit().await?;
            return Ok(outcome);
        }
        ctx.hold().await;
        // The row lock already keeps everyone else out: the write needs no
        // condition of its own (it still checks the cluster's epoch). It goes
        // to Postgres together with COMMIT, which releases the row lock.
        let Some(outcome) = ctx.commit_booking(&mut tx, ctx.attempt(seat.id), SeatCondition::Any).await? else {
            return Err(ctx.seat_not_found().await);
        };
        crate::metrics::lock_held(ctx.strategy, acquired.elapsed());
        Ok(outcome)
    }
}
