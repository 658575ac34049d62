//! Seats and events: reading them, and creating, resetting and deleting events.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::pipelined::{Conn, DbError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub name: String,
    pub venue: String,
    pub event_date: DateTime<Utc>,
    pub total_seats: i32,
}

#[derive(Debug, Clone, sqlx::FromRow)]
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
    /// The seat's newest hold, and whether it is still live by Postgres'
    /// clock at the moment of this read (`held_until > now()`).
    pub hold_id: Option<i64>,
    pub held_by: Option<String>,
    pub held_until: Option<DateTime<Utc>>,
    pub hold_live: bool,
}

/// Who may have a seat, as one read of it saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Not booked, and no live hold: anyone may take it.
    Free,
    /// Booked (by anyone).
    Booked,
    /// Kept by a live hold of this customer.
    HeldByThem,
    /// Kept by a live hold of another customer.
    HeldByOther,
}

impl Seat {
    /// Whether `customer` may take the seat. Expiry is the database's
    /// verdict (`hold_live`), never this replica's clock.
    pub fn availability(&self, customer: &str) -> Availability {
        match (self.is_booked, self.hold_live) {
            (true, _) => Availability::Booked,
            (false, false) => Availability::Free,
            (false, true) if self.held_by.as_deref() == Some(customer) => Availability::HeldByThem,
            (false, true) => Availability::HeldByOther,
        }
    }
}

const SEAT_COLUMNS: &str = "id, event_id, seat_number, section, row_name, is_booked, booked_by, \
                            booked_at, version, fencing_token, hold_id, held_by, held_until, \
                            held_until IS NOT NULL AND held_until > now() AS hold_live";

impl Seat {
    /// A row of [`SEAT_COLUMNS`], as the booking path's connection returns it.
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            seat_number: row.try_get("seat_number")?,
            section: row.try_get("section")?,
            row_name: row.try_get("row_name")?,
            is_booked: row.try_get("is_booked")?,
            booked_by: row.try_get("booked_by")?,
            booked_at: row.try_get("booked_at")?,
            version: row.try_get("version")?,
            fencing_token: row.try_get("fencing_token")?,
            hold_id: row.try_get("hold_id")?,
            held_by: row.try_get("held_by")?,
            held_until: row.try_get("held_until")?,
            hold_live: row.try_get("hold_live")?,
        })
    }
}

/// The seat, on the booking path's connection, from one statement.
async fn one_seat(conn: &mut Conn, sql: &str, params: super::pipelined::Params<'_>) -> Result<Option<Seat>, DbError> {
    Ok(conn.query_opt(sql, params).await?.as_ref().map(Seat::from_row).transpose()?)
}

#[tracing::instrument(name = "db.event", skip_all)]
pub async fn event(pool: &PgPool, event_id: i64) -> sqlx::Result<Option<Event>> {
    sqlx::query_as("SELECT id, name, venue, event_date, total_seats FROM events WHERE id = $1").bind(event_id).fetch_optional(pool).await
}

#[tracing::instrument(name = "db.seats", skip_all)]
pub async fn seats(pool: &PgPool, event_id: i64, available_only: bool) -> sqlx::Result<Vec<Seat>> {
    seats_page(pool, event_id, available_only, None, i64::MAX).await
}

/// At most `limit` of the event's seats in seat-map order (row, then seat
/// number), starting after the seat `after`: keyset paging, so page 100 costs
/// what page 1 does. A seat's row is the letters of its number.
#[tracing::instrument(name = "db.seats_page", skip_all)]
pub async fn seats_page(pool: &PgPool, event_id: i64, available_only: bool, after: Option<&str>, limit: i64) -> sqlx::Result<Vec<Seat>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SEAT_COLUMNS} FROM seats
         WHERE event_id = $1 AND (NOT $2 OR (NOT is_booked AND NOT (held_until IS NOT NULL AND held_until > now())))
           AND ($3::text IS NULL OR (row_name, length(seat_number), seat_number)
                                    > (substring($3 FROM '^[A-Za-z]+'), length($3), $3::text))
         ORDER BY row_name, length(seat_number), seat_number
         LIMIT $4"
    )))
    .bind(event_id)
    .bind(available_only)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One seat of the event, if it has one by that number.
#[tracing::instrument(name = "db.seat", skip_all)]
pub async fn seat_by_number(pool: &PgPool, event_id: i64, seat_number: &str) -> sqlx::Result<Option<Seat>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {SEAT_COLUMNS} FROM seats WHERE event_id = $1 AND seat_number = $2")))
        .bind(event_id)
        .bind(seat_number)
        .fetch_optional(pool)
        .await
}

/// A booking that holds a seat: the seat map shows who, and which replica wrote it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Holder {
    pub seat_number: String,
    pub customer_id: String,
    /// The replica that wrote the booking.
    pub instance: String,
    /// `confirmed` or `double_booked`.
    pub status: String,
    pub booking_id: i64,
}

/// Every booking that holds a seat of the event, oldest first.
#[tracing::instrument(name = "db.holders", skip_all)]
pub async fn holders(pool: &PgPool, event_id: i64) -> sqlx::Result<Vec<Holder>> {
    sqlx::query_as(
        "SELECT s.seat_number, b.customer_id, b.instance_id AS instance, b.status, b.id AS booking_id
         FROM bookings b JOIN seats s ON s.id = b.seat_id
         WHERE b.event_id = $1 AND b.status IN ('confirmed', 'double_booked')
         ORDER BY b.id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}

/// Free seats per event, of every event or of one.
#[tracing::instrument(name = "db.available_seats", skip_all)]
pub async fn available_seats(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "SELECT event_id, count(*) FILTER (WHERE NOT is_booked AND NOT (held_until IS NOT NULL AND held_until > now())) FROM seats
         WHERE ($1::BIGINT IS NULL OR event_id = $1)
         GROUP BY event_id ORDER BY event_id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}

/// Whether the event exists, on the booking path's connection (a booking of
/// a seat that is not there says which of the two is missing).
#[tracing::instrument(name = "db.event_exists", skip_all)]
pub async fn event_exists(conn: &mut Conn, event_id: i64) -> Result<bool, DbError> {
    Ok(conn.query_opt("SELECT 1 FROM events WHERE id = $1", &[&event_id]).await?.is_some())
}

/// A plain read: what every strategy except `pessimistic` starts with.
#[tracing::instrument(name = "db.read_seat", skip_all)]
pub async fn seat(conn: &mut Conn, event_id: i64, seat_number: &str) -> Result<Option<Seat>, DbError> {
    one_seat(conn, &format!("SELECT {SEAT_COLUMNS} FROM seats WHERE event_id = $1 AND seat_number = $2"), &[&event_id, &seat_number]).await
}

/// `SELECT … FOR UPDATE`: reads the seat and locks its row until the
/// surrounding transaction ends. A second transaction asking for the same row
/// waits here.
#[tracing::instrument(name = "db.select_seat_for_update", skip_all)]
pub async fn seat_for_update(tx: &mut Conn, event_id: i64, seat_number: &str) -> Result<Option<Seat>, DbError> {
    let sql = format!("SELECT {SEAT_COLUMNS} FROM seats WHERE event_id = $1 AND seat_number = $2 FOR UPDATE");
    one_seat(tx, &sql, &[&event_id, &seat_number]).await
}

/// Records `token` as the newest fencing token to touch the seat and returns
/// the seat, or `None` when a newer token got there first.
#[tracing::instrument(name = "db.fence_seat", skip_all)]
pub async fn fence_seat(conn: &mut Conn, seat_id: i64, token: i64) -> Result<Option<Seat>, DbError> {
    let sql = format!("UPDATE seats SET fencing_token = $2 WHERE id = $1 AND fencing_token < $2 RETURNING {SEAT_COLUMNS}");
    one_seat(conn, &sql, &[&seat_id, &token]).await
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
pub async fn delete_event(conn: &mut PgConnection, event_id: i64) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM events WHERE id = $1").bind(event_id).execute(conn).await?;
    Ok(deleted.rows_affected() == 1)
}

/// Frees every seat of the event and deletes its bookings and holds, inside the
/// caller's transaction (the reset barrier's). Returns false when there is no
/// such event.
#[tracing::instrument(name = "db.reset_event", skip_all)]
pub async fn reset_event(conn: &mut PgConnection, event_id: i64) -> sqlx::Result<bool> {
    let seats = sqlx::query(
        "UPDATE seats SET is_booked = FALSE, booked_by = NULL, booked_at = NULL, version = 0, fencing_token = 0, holders = 0,
                          hold_id = NULL, held_by = NULL, held_until = NULL, hold_count = 0
         WHERE event_id = $1",
    )
    .bind(event_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM holds WHERE event_id = $1").bind(event_id).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM bookings WHERE event_id = $1").bind(event_id).execute(&mut *conn).await?;
    Ok(seats.rows_affected() > 0)
}
