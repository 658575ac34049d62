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

/// The booking's one write, inside the caller's transaction:
///
/// 1. update the seat, if it still matches `condition` and the cluster is
///    still in the booking's epoch. The statement share-locks the epoch row
///    (`FOR SHARE` in its sub-select): a switch waits for this transaction,
///    and once it has switched, the check fails. It also takes the seat's row
///    lock, so concurrent writers of one seat queue here;
/// 2. insert the booking row, counting the holders that committed before it.
///
/// One statement for the epoch and the seat saves a round trip per booking.
/// The holder count stays a statement of its own: it must see the writers
/// the seat update waited for (see [`insert_holder`]). Only when the update
/// matched nothing is the epoch read again, to tell a switch from a seat that
/// changed.
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
    if update_seat(tx, attempt.seat_id, attempt.customer_id, condition, epoch_version).await? {
        return Ok(Written::Booked(insert_holder(tx, attempt).await?));
    }
    let current = epoch::load(&mut *tx).await?;
    if current.version != epoch_version {
        return Ok(Written::StaleEpoch(current));
    }
    Ok(Written::SeatChanged)
}

async fn update_seat(conn: &mut PgConnection, seat_id: i64, customer_id: &str, condition: SeatCondition, epoch: u64) -> sqlx::Result<bool> {
    let (filter, value) = match condition {
        SeatCondition::Any => ("TRUE", None),
        SeatCondition::Version(version) => ("version = $3 AND NOT is_booked", Some(version)),
        SeatCondition::FencingToken(token) => ("fencing_token = $3", Some(token)),
    };
    let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE seats SET is_booked = TRUE, booked_by = $2, booked_at = now(), version = version + 1
         WHERE id = $1 AND {filter}
           AND (SELECT version FROM strategy_epoch FOR SHARE) = $4"
    )))
    .bind(seat_id)
    .bind(customer_id)
    .bind(value)
    .bind(epoch as i64)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Inserts the holder's row. The count of earlier holders runs in this
/// statement's snapshot, taken after the seat update above waited for (and
/// so saw) every earlier writer of the seat: a second holder is marked
/// `double_booked`, so the response and the stats tell the truth.
async fn insert_holder(conn: &mut PgConnection, attempt: Attempt<'_>) -> sqlx::Result<Recorded> {
    let (booking_id, holders): (i64, i64) = sqlx::query_as(
        "WITH earlier AS (
             SELECT count(*) AS holders FROM bookings
             WHERE seat_id = $2 AND status IN ('confirmed', 'double_booked')
         ), inserted AS (
             INSERT INTO bookings
                 (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
             SELECT $1, $2, $3, CASE WHEN earlier.holders = 0 THEN 'confirmed' ELSE 'double_booked' END, $4, $5, $6, $7
             FROM earlier
             RETURNING id
         ), linked AS (
             UPDATE idempotency_keys SET booking_id = (SELECT id FROM inserted) WHERE key = $8
         )
         SELECT inserted.id, earlier.holders + 1 FROM inserted, earlier",
    )
    .bind(attempt.event_id)
    .bind(attempt.seat_id)
    .bind(attempt.customer_id)
    .bind(attempt.strategy)
    .bind(attempt.instance_id)
    .bind(attempt.attempts)
    .bind(attempt.fencing_token)
    .bind(attempt.idempotency_key)
    .fetch_one(conn)
    .await?;
    Ok(Recorded { booking_id, holders })
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
