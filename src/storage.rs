//! All seat and booking SQL, in one place.
//!
//! Every locking strategy calls these functions; strategies differ only in how
//! they coordinate around them, never in the SQL itself. Functions that run
//! inside a strategy's critical section take a `&mut PgConnection`, so the same
//! query works on a pooled connection and inside a transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// Booking statuses as stored in `bookings.status`.
pub(crate) const CONFIRMED: &str = "confirmed";
pub(crate) const DOUBLE_BOOKED: &str = "double_booked";
pub(crate) const FAILED: &str = "failed";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub name: String,
    pub venue: String,
    pub event_date: DateTime<Utc>,
    pub total_seats: i32,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Seat {
    pub id: i64,
    pub event_id: i64,
    pub seat_number: String,
    pub section: String,
    pub row_name: String,
    pub is_booked: bool,
    pub booked_by: Option<String>,
    pub booked_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub fencing_token: i64,
}

const SEAT_COLUMNS: &str = "id, event_id, seat_number, section, row_name, is_booked, booked_by, \
                            booked_at, version, fencing_token";

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
}

/// A booking that was written as the seat's holder.
#[derive(Debug, Clone, Copy)]
pub struct Recorded {
    pub booking_id: i64,
    /// How many bookings now hold this seat; above 1 is a double booking.
    pub holders: i64,
}

#[tracing::instrument(name = "db.event", skip_all)]
pub async fn event(pool: &PgPool, event_id: i64) -> sqlx::Result<Option<Event>> {
    sqlx::query_as("SELECT id, name, venue, event_date, total_seats FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_optional(pool)
        .await
}

#[tracing::instrument(name = "db.seats", skip_all)]
pub async fn seats(pool: &PgPool, event_id: i64, available_only: bool) -> sqlx::Result<Vec<Seat>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SEAT_COLUMNS} FROM seats
         WHERE event_id = $1 AND (NOT $2 OR NOT is_booked)
         ORDER BY row_name, length(seat_number), seat_number"
    )))
    .bind(event_id)
    .bind(available_only)
    .fetch_all(pool)
    .await
}

/// Free seats per event, of every event or of one.
#[tracing::instrument(name = "db.available_seats", skip_all)]
pub async fn available_seats(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT event_id, count(*) FILTER (WHERE NOT is_booked) FROM seats
         WHERE ($1::BIGINT IS NULL OR event_id = $1)
         GROUP BY event_id ORDER BY event_id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}

/// A plain read: what every strategy except `pessimistic` starts with.
#[tracing::instrument(name = "db.read_seat", skip_all)]
pub async fn seat(conn: &mut PgConnection, event_id: i64, seat_number: &str) -> sqlx::Result<Option<Seat>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SEAT_COLUMNS} FROM seats WHERE event_id = $1 AND seat_number = $2"
    )))
    .bind(event_id)
    .bind(seat_number)
    .fetch_optional(conn)
    .await
}

/// `SELECT … FOR UPDATE`: reads the seat and locks its row until the
/// surrounding transaction ends. A second transaction asking for the same row
/// waits here.
#[tracing::instrument(name = "db.select_seat_for_update", skip_all)]
pub async fn seat_for_update(
    conn: &mut PgConnection,
    event_id: i64,
    seat_number: &str,
) -> sqlx::Result<Option<Seat>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SEAT_COLUMNS} FROM seats WHERE event_id = $1 AND seat_number = $2 FOR UPDATE"
    )))
    .bind(event_id)
    .bind(seat_number)
    .fetch_optional(conn)
    .await
}

/// Records `token` as the newest fencing token to touch the seat and returns
/// the seat, or `None` when a newer token got there first.
#[tracing::instrument(name = "db.fence_seat", skip_all)]
pub async fn fence_seat(conn: &mut PgConnection, seat_id: i64, token: i64) -> sqlx::Result<Option<Seat>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE seats SET fencing_token = $2 WHERE id = $1 AND fencing_token < $2
         RETURNING {SEAT_COLUMNS}"
    )))
    .bind(seat_id)
    .bind(token)
    .fetch_optional(conn)
    .await
}

/// Marks the seat booked, whatever its state: the write that double-books
/// when nothing coordinates the callers.
#[tracing::instrument(name = "db.book_seat", skip_all)]
pub async fn book_seat(conn: &mut PgConnection, seat_id: i64, customer_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE seats SET is_booked = TRUE, booked_by = $2, booked_at = now(), version = version + 1
         WHERE id = $1",
    )
    .bind(seat_id)
    .bind(customer_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Compare-and-set on `version`: books the seat only if nobody wrote it since
/// it was read at `version`. Returns whether this write won.
#[tracing::instrument(name = "db.book_seat_if_version", skip_all)]
pub async fn book_seat_if_version(
    conn: &mut PgConnection,
    seat_id: i64,
    customer_id: &str,
    version: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE seats SET is_booked = TRUE, booked_by = $2, booked_at = now(), version = version + 1
         WHERE id = $1 AND version = $3 AND NOT is_booked",
    )
    .bind(seat_id)
    .bind(customer_id)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Books the seat only while `token` is still the newest fencing token on it.
/// A holder whose lock expired, and whose seat was fenced by the next holder,
/// writes nothing. Returns whether this write won.
#[tracing::instrument(name = "db.book_seat_if_token", skip_all)]
pub async fn book_seat_if_token(
    conn: &mut PgConnection,
    seat_id: i64,
    customer_id: &str,
    token: i64,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE seats SET is_booked = TRUE, booked_by = $2, booked_at = now(), version = version + 1
         WHERE id = $1 AND fencing_token = $3",
    )
    .bind(seat_id)
    .bind(customer_id)
    .bind(token)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Records a booking that was given the seat, then counts how many bookings
/// hold the seat now. When that is more than one, the race happened: the row
/// is marked `double_booked` so the response and the stats tell the truth.
#[tracing::instrument(name = "db.record_holder", skip_all)]
pub async fn record_holder(conn: &mut PgConnection, attempt: Attempt<'_>) -> sqlx::Result<Recorded> {
    let booking_id = insert_booking(conn, attempt, CONFIRMED, None).await?;
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE seat_id = $1 AND status IN ('confirmed', 'double_booked')",
    )
    .bind(attempt.seat_id)
    .fetch_one(&mut *conn)
    .await?;
    if holders > 1 {
        sqlx::query("UPDATE bookings SET status = $2 WHERE id = $1")
            .bind(booking_id)
            .bind(DOUBLE_BOOKED)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Recorded { booking_id, holders })
}

/// Records an attempt that did not get the seat, and why.
#[tracing::instrument(name = "db.record_failure", skip_all)]
pub async fn record_failure(conn: &mut PgConnection, attempt: Attempt<'_>, reason: &str) -> sqlx::Result<i64> {
    insert_booking(conn, attempt, FAILED, Some(reason)).await
}

async fn insert_booking(
    conn: &mut PgConnection,
    attempt: Attempt<'_>,
    status: &str,
    reason: Option<&str>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO bookings
             (event_id, seat_id, customer_id, status, reason, locking_strategy, instance_id, attempts, fencing_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         RETURNING id",
    )
    .bind(attempt.event_id)
    .bind(attempt.seat_id)
    .bind(attempt.customer_id)
    .bind(status)
    .bind(reason)
    .bind(attempt.strategy)
    .bind(attempt.instance_id)
    .bind(attempt.attempts)
    .bind(attempt.fencing_token)
    .fetch_one(conn)
    .await
}

/// Creates an event with `rows` rows of `seats_per_row` seats: rows are
/// named A..Z, then AA..ZZ, seats numbered from 1 (`A1`, `AB100`). Every
/// seat is in section "General".
#[tracing::instrument(name = "db.create_event", skip_all)]
pub async fn create_event(pool: &PgPool, name: &str, venue: &str, rows: i32, seats_per_row: i32) -> sqlx::Result<Event> {
    let mut tx = pool.begin().await?;
    let event: Event = sqlx::query_as(
        "INSERT INTO events (name, venue, event_date, total_seats)
         VALUES ($1, $2, now() + interval '30 days', $3)
         RETURNING id, name, venue, event_date, total_seats",
    )
    .bind(name)
    .bind(venue)
    .bind(rows * seats_per_row)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO seats (event_id, seat_number, section, row_name)
         SELECT $1, row_name || seat, 'General', row_name
         FROM (SELECT CASE WHEN r < 26 THEN chr(65 + r)
                           ELSE chr(65 + r / 26 - 1) || chr(65 + r % 26) END AS row_name
               FROM generate_series(0, $2 - 1) AS r) AS rows,
              generate_series(1, $3) AS seat",
    )
    .bind(event.id)
    .bind(rows)
    .bind(seats_per_row)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// Deletes an event with its seats and bookings; false when there is none.
#[tracing::instrument(name = "db.delete_event", skip_all)]
pub async fn delete_event(pool: &PgPool, event_id: i64) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM events WHERE id = $1").bind(event_id).execute(pool).await?;
    Ok(deleted.rows_affected() == 1)
}

/// Frees every seat of the event and deletes its bookings. Returns false when
/// there is no such event.
#[tracing::instrument(name = "db.reset_event", skip_all)]
pub async fn reset_event(pool: &PgPool, event_id: i64) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let seats = sqlx::query(
        "UPDATE seats SET is_booked = FALSE, booked_by = NULL, booked_at = NULL, version = 0, fencing_token = 0
         WHERE event_id = $1",
    )
    .bind(event_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM bookings WHERE event_id = $1")
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(seats.rows_affected() > 0)
}

/// A seat that more than one booking holds.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct DoubleBooking {
    pub event_id: i64,
    pub seat_number: String,
    pub booking_count: i64,
    pub customers: Vec<String>,
}

#[tracing::instrument(name = "db.double_bookings", skip_all)]
pub async fn double_bookings(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Vec<DoubleBooking>> {
    sqlx::query_as(
        "SELECT s.event_id, s.seat_number, count(*) AS booking_count,
                array_agg(b.customer_id ORDER BY b.id) AS customers
         FROM bookings b JOIN seats s ON s.id = b.seat_id
         WHERE b.status IN ('confirmed', 'double_booked') AND ($1::BIGINT IS NULL OR s.event_id = $1)
         GROUP BY s.event_id, s.seat_number
         HAVING count(*) > 1
         ORDER BY s.event_id, s.seat_number",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}

/// Counts of booking attempts by outcome.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub confirmed: i64,
    pub failed: i64,
    pub double_booked: i64,
    pub total: i64,
    /// Failed attempts by reason (`seat_taken`, `lock_busy`, ...).
    pub reasons: std::collections::BTreeMap<String, i64>,
    /// Optimistic compare-and-set conflicts that were retried.
    pub retries: i64,
}

#[derive(Debug, Serialize)]
pub struct StrategyTotals {
    pub strategy: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub totals: Totals,
    pub by_strategy: Vec<StrategyTotals>,
}

#[tracing::instrument(name = "db.stats", skip_all)]
pub async fn stats(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Stats> {
    let rows: Vec<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT locking_strategy, status, reason, count(*), COALESCE(sum(attempts - 1), 0)::BIGINT FROM bookings
         WHERE ($1::BIGINT IS NULL OR event_id = $1)
         GROUP BY locking_strategy, status, reason ORDER BY locking_strategy",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;

    let mut stats = Stats { totals: Totals::default(), by_strategy: Vec::new() };
    for (strategy, status, reason, count, retries) in rows {
        if stats.by_strategy.last().is_none_or(|last| last.strategy != strategy) {
            stats.by_strategy.push(StrategyTotals { strategy, totals: Totals::default() });
        }
        let per_strategy = &mut stats.by_strategy.last_mut().expect("pushed above").totals;
        for totals in [&mut stats.totals, per_strategy] {
            totals.add(&status, reason.as_deref(), count, retries);
        }
    }
    Ok(stats)
}

impl Totals {
    fn add(&mut self, status: &str, reason: Option<&str>, count: i64, retries: i64) {
        match status {
            CONFIRMED => self.confirmed += count,
            DOUBLE_BOOKED => self.double_booked += count,
            _ => self.failed += count,
        }
        if let Some(reason) = reason {
            *self.reasons.entry(reason.to_owned()).or_default() += count;
        }
        self.total += count;
        self.retries += retries;
    }
}
