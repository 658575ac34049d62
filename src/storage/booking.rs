//! Writing a booking: the seat and its booking row, committed together.
//!
//! [`write_booking`] is the one write every strategy ends with. It runs inside
//! the caller's transaction, so the epoch check, the seat update and the
//! booking row commit together or not at all: a crash or a Postgres failure
//! between them leaves neither. That is atomicity *within* one request, which
//! is not coordination *between* requests: under `none` two such writes still
//! both succeed, one after the other, and the second is told it double-booked.

use sqlx::PgConnection;

use super::epoch;
use crate::domain::{Applied, BookingStatus};

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
    /// How many bookings now hold this seat; above 1 is a double booking.
    pub holders: i64,
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

/// What [`write_booking`] did.
#[derive(Debug, Clone, Copy)]
pub enum Written {
    /// The seat and the booking row are written (not yet committed).
    Booked(Recorded),
    /// The seat no longer matches the condition; nothing was written.
    SeatChanged,
    /// The cluster left the booking's epoch while it was in flight; nothing
    /// was written. Carries the cluster's current setting.
    StaleEpoch(Applied),
}

/// The booking's one write, inside the caller's transaction: one statement
/// that
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
/// switch from a seat that changed.
///
/// The caller commits. On anything but `Booked` nothing has been written, and
/// the caller may still record a refusal in the same transaction.
#[tracing::instrument(name = "db.write_booking", skip_all)]
pub async fn write_booking(
    tx: &mut PgConnection,
    epoch_version: u64,
    condition: SeatCondition,
    attempt: Attempt<'_>,
) -> sqlx::Result<Written> {
    if let Some(recorded) = book_seat(tx, epoch_version, condition, attempt).await? {
        return Ok(Written::Booked(recorded));
    }
    let current = epoch::load(&mut *tx).await?;
    if current.version != epoch_version {
        return Ok(Written::StaleEpoch(current));
    }
    Ok(Written::SeatChanged)
}

async fn book_seat(conn: &mut PgConnection, epoch: u64, condition: SeatCondition, attempt: Attempt<'_>) -> sqlx::Result<Option<Recorded>> {
    let (filter, value) = match condition {
        SeatCondition::Any => ("TRUE", None),
        SeatCondition::Version(version) => ("version = $9 AND NOT is_booked", Some(version)),
        SeatCondition::FencingToken(token) => ("fencing_token = $9", Some(token)),
    };
    let booked: Option<(i64, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH seat AS (
             UPDATE seats SET is_booked = TRUE, booked_by = $3, booked_at = now(), version = version + 1, holders = holders + 1
             WHERE id = $2 AND {filter}
               AND (SELECT version FROM strategy_epoch FOR SHARE) = $10
             RETURNING holders
         ), inserted AS (
             INSERT INTO bookings
                 (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
             SELECT $1, $2, $3, CASE WHEN seat.holders = 1 THEN 'confirmed' ELSE 'double_booked' END, $4, $5, $6, $7
             FROM seat
             RETURNING id
         ), linked AS (
             UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = $8
         )
         SELECT inserted.id, seat.holders FROM inserted, seat"
    )))
    .bind(attempt.event_id)
    .bind(attempt.seat_id)
    .bind(attempt.customer_id)
    .bind(attempt.strategy)
    .bind(attempt.instance_id)
    .bind(attempt.attempts)
    .bind(attempt.fencing_token)
    .bind(attempt.idempotency_key)
    .bind(value)
    .bind(epoch as i64)
    .fetch_optional(conn)
    .await?;
    Ok(booked.map(|(booking_id, holders)| Recorded { booking_id, holders: holders.into() }))
}

/// The booking by which `customer_id` holds the seat, if they hold it.
#[tracing::instrument(name = "db.holding", skip_all)]
pub async fn holding(conn: &mut PgConnection, seat_id: i64, customer_id: &str) -> sqlx::Result<Option<Recorded>> {
    let held: Option<(i64, i64)> = sqlx::query_as(
        "SELECT b.id, (SELECT count(*) FROM bookings h WHERE h.seat_id = $1 AND h.status IN ('confirmed', 'double_booked'))
         FROM bookings b
         WHERE b.seat_id = $1 AND b.customer_id = $2 AND b.status IN ('confirmed', 'double_booked')
         ORDER BY b.id LIMIT 1",
    )
    .bind(seat_id)
    .bind(customer_id)
    .fetch_optional(conn)
    .await?;
    Ok(held.map(|(booking_id, holders)| Recorded { booking_id, holders }))
}

/// Records an attempt that did not get the seat, and why.
#[tracing::instrument(name = "db.record_failure", skip_all)]
pub async fn record_failure(conn: &mut PgConnection, attempt: Attempt<'_>, reason: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO bookings
             (event_id, seat_id, customer_id, status, reason, locking_strategy, instance_id, attempts, fencing_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING id",
    )
    .bind(attempt.event_id)
    .bind(attempt.seat_id)
    .bind(attempt.customer_id)
    .bind(BookingStatus::Failed.as_str())
    .bind(reason)
    .bind(attempt.strategy)
    .bind(attempt.instance_id)
    .bind(attempt.attempts)
    .bind(attempt.fencing_token)
    .fetch_one(conn)
    .await
}
