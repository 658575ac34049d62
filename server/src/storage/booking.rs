//! Writing a booking: the seat and its booking row, committed together.
//!
//! [`commit_booking`] is the one write every strategy ends with. It is the
//! last statement of the caller's transaction, sent together with `COMMIT`,
//! so the epoch check, the seat update and the booking row commit together or
//! not at all: a crash or a Postgres failure between them leaves neither. That is atomicity *within* one request, which
//! is not coordination *between* requests: under `none` two such writes still
//! both succeed, one after the other, and the second is told it double-booked.

use super::epoch;
use tokio_postgres::types::ToSql;

use super::pipelined::{Conn, DbError};
use crate::domain::{Applied, BookingStatus};

/// Reads the status the database gave a booking (see `booking_status()` in
/// the migrations: the one place that decides "double-booked").
fn status(row: &tokio_postgres::Row, column: usize) -> Result<BookingStatus, DbError> {
    let status: &str = row.try_get(column)?;
    BookingStatus::parse(status).map_err(DbError::Data)
}

/// Who is booking what, with which strategy, on which replica: everything a
/// row in `bookings` records besides its outcome.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub event_id: i64,
    pub seat_id: i64,
    pub customer_id: &'a str,
    pub strategy: &'a str,
    pub instance_id: &'a str,
    pub attempts: i32,
    pub fencing_token: Option<i64>,
    /// The request's idempotency key: the booking is linked to it in the
    /// same transaction.
    pub idempotency_key: Option<&'a str>,
}

/// A booking that was written as the seat's holder.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    pub booking_id: i64,
    /// How many bookings now hold this seat.
    pub holders: i64,
    /// `confirmed`, or `double_booked` when `holders` is above 1.
    pub status: BookingStatus,
}

/// What the seat must still look like for the write to go through: the only
/// thing the strategies differ in when they write.
#[derive(Debug, Clone, Copy)]
pub enum SeatCondition {
    /// Whatever its state: the write that double-books when nothing
    /// coordinates the callers (`none`, `mutex`, the Redis locks, `pessimistic`
    /// whose row lock already excludes everyone else).
    Any,
    /// Compare-and-set: nobody wrote the seat since it was read at this
    /// version, and it is still free (`optimistic`).
    Version(i64),
    /// This fencing token is still the newest to have touched the seat (`fenced`).
    FencingToken(i64),
}

impl<T> Written<T> {
    /// The same result, with what was written turned into `U`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        match self {
            Self::Done(written) => Written::Done(f(written)),
            Self::SeatChanged => Written::SeatChanged,
            Self::StaleEpoch(current) => Written::StaleEpoch(current),
        }
    }
}

impl SeatCondition {
    /// The condition as SQL on the seat row, naming its value (if it has
    /// one) as parameter `$n`, and that value.
    pub(super) fn filter(self, n: usize) -> (String, Option<i64>) {
        match self {
            Self::Any => ("TRUE".into(), None),
            Self::Version(version) => (format!("version = ${n} AND NOT is_booked"), Some(version)),
            Self::FencingToken(token) => (format!("fencing_token = ${n}"), Some(token)),
        }
    }
}

/// What a strategy's write ([`commit_booking`], or
/// [`super::holds::commit_hold`]) did.
#[derive(Debug, Clone, Copy)]
pub enum Written<T = Recorded> {
    /// The seat and its row (`T`: a booking, or a hold) are written and committed.
    Done(T),
    /// The seat no longer matches the condition; nothing was written.
    SeatChanged,
    /// The cluster left the booking's epoch while it was in flight; nothing
    /// was written. Carries the cluster's current setting.
    StaleEpoch(Applied),
}

/// The booking's one write, and the `COMMIT` of the caller's transaction
/// (`tx`), sent together: one statement that
///
/// 1. updates the seat, if it still matches `condition` and the cluster is
///    still in the booking's epoch. The statement share-locks the epoch row
///    (`FOR SHARE` in its sub-select): a switch waits for this transaction,
///    and once it has switched, the check fails. It also takes the seat's row
///    lock, so concurrent writers of one seat queue here;
/// 2. counts the seat's holders on the seat row (`holders + 1`). An UPDATE
///    that waited for another writer of the row re-reads the row once that
///    writer commits, so the count includes every earlier holder: a second
///    holder is marked `double_booked`, and the response and the stats tell
///    the truth;
/// 3. inserts the booking row, and links the request's idempotency key to it.
///
/// Only when the update matched nothing is the epoch read again, to tell a
/// switch from a seat that changed. On anything but `Booked` nothing was
/// written, and `tx` is left in autocommit for the caller to record a refusal.
#[tracing::instrument(name = "db.commit_booking", skip_all)]
pub async fn commit_booking(tx: &mut Conn, epoch: u64, condition: SeatCondition, attempt: Attempt<'_>) -> Result<Written, DbError> {
    let recorded = book_seat(tx, epoch, condition, attempt).await?;
    why_not_written(tx, epoch, recorded).await
}

/// The write's result: done, or, when it matched nothing, whether the
/// cluster left the epoch or the seat changed.
pub(super) async fn why_not_written<T>(tx: &mut Conn, epoch: u64, written: Option<T>) -> Result<Written<T>, DbError> {
    if let Some(written) = written {
        return Ok(Written::Done(written));
    }
    let current = epoch::current(tx).await?;
    if current.epoch != epoch {
        return Ok(Written::StaleEpoch(current));
    }
    Ok(Written::SeatChanged)
}

async fn book_seat(tx: &mut Conn, epoch: u64, condition: SeatCondition, attempt: Attempt<'_>) -> Result<Option<Recorded>, DbError> {
    // The condition's value, if it has one, is the last parameter ($10).
    let (filter, value) = condition.filter(10);
    let sql = format!(
        "WITH seat AS (
             UPDATE seats SET is_booked = TRUE, booked_by = $3, booked_at = now(), version = version + 1, holders = holders + 1
             WHERE id = $2 AND {filter}
               AND (SELECT epoch FROM strategy_epoch FOR SHARE) = $9
             RETURNING holders
         ), inserted AS (
             INSERT INTO bookings
                 (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
             SELECT $1, $2, $3, booking_status(seat.holders), $4, $5, $6, $7
             FROM seat
             RETURNING id, status
         ), linked AS (
             UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = $8
         )
         SELECT inserted.id, seat.holders, inserted.status FROM inserted, seat"
    );
    let epoch = epoch as i64;
    let params: [&(dyn ToSql + Sync); 10] = [
        &attempt.event_id,
        &attempt.seat_id,
        &attempt.customer_id,
        &attempt.strategy,
        &attempt.instance_id,
        &attempt.attempts,
        &attempt.fencing_token,
        &attempt.idempotency_key,
        &epoch,
        &value,
    ];
    let params = if value.is_some() { &params[..] } else { &params[..9] };
    let rows = tx.commit_with(&sql, params).await?;
    let Some(row) = rows.first() else { return Ok(None) };
    Ok(Some(Recorded { booking_id: row.try_get(0)?, holders: row.try_get::<_, i32>(1)?.into(), status: status(row, 2)? }))
}

/// The booking by which `customer_id` holds the seat, if they hold it.
#[tracing::instrument(name = "db.holding", skip_all)]
pub async fn holding(conn: &mut Conn, seat_id: i64, customer_id: &str) -> Result<Option<Recorded>, DbError> {
    let held = conn
        .query_opt(
            "SELECT id, holders, booking_status(holders) FROM (
             SELECT b.id, (SELECT count(*) FROM bookings h WHERE h.seat_id = $1 AND h.status IN ('confirmed', 'double_booked')) AS holders
             FROM bookings b
             WHERE b.seat_id = $1 AND b.customer_id = $2 AND b.status IN ('confirmed', 'double_booked')
             ORDER BY b.id LIMIT 1) AS held",
            &[&seat_id, &customer_id],
        )
        .await?;
    let Some(row) = held else { return Ok(None) };
    Ok(Some(Recorded { booking_id: row.try_get(0)?, holders: row.try_get(1)?, status: status(&row, 2)? }))
}

/// Records an attempt that did not get the seat, and why.
#[tracing::instrument(name = "db.record_failure", skip_all)]
pub async fn record_failure(conn: &mut Conn, attempt: Attempt<'_>, reason: &str) -> Result<i64, DbError> {
    let row = conn
        .query_one(
            "INSERT INTO bookings
                 (event_id, seat_id, customer_id, status, reason, locking_strategy, instance_id, attempts, fencing_token)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             RETURNING id",
            &[
                &attempt.event_id,
                &attempt.seat_id,
                &attempt.customer_id,
                &BookingStatus::Failed.as_str(),
                &reason,
                &attempt.strategy,
                &attempt.instance_id,
                &attempt.attempts,
                &attempt.fencing_token,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}
