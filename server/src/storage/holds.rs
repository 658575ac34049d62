//! Holds: taking one (a strategy's write), confirming it into a booking,
//! releasing it, reading it, and sweeping the expired ones.
//!
//! Every "is it still live?" here is `expires_at > now()`, asked of Postgres
//! inside the statement or transaction that acts on the answer. A replica's
//! clock never decides.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::booking::{Attempt, Recorded, SeatCondition, Written, why_not_written};
use super::pipelined::{Conn, DbError};
use crate::domain::{BookingStatus, HoldStatus};

/// A hold that a strategy's write took.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    pub hold_id: i64,
    /// Decided by Postgres' clock: `now()` plus the hold's TTL.
    pub expires_at: DateTime<Utc>,
    /// How many live holds the seat had with this one: above 1, the strategy
    /// let two customers hold one seat.
    pub holds: i64,
    /// Written by this request; false when the customer already held the
    /// seat and got their live hold back.
    pub fresh: bool,
}

/// The hold's write, and the `COMMIT` of the caller's transaction: one
/// statement, like [`super::commit_booking`], that
///
/// 1. stamps the seat with the new hold (its id, customer, and expiry: the
///    TTL from this statement's start, `statement_timestamp()`, so a
///    `pessimistic` hold that waited for the row lock gets its whole TTL), if
///    the seat still matches `condition` and the cluster is still in the
///    hold's epoch, counting the holds that were live on the seat;
/// 2. inserts the hold row.
#[tracing::instrument(name = "db.commit_hold", skip_all)]
pub async fn commit_hold(tx: &mut Conn, epoch: u64, condition: SeatCondition, attempt: Attempt<'_>, ttl_ms: i64) -> Result<Written<Taken>, DbError> {
    let (filter, value) = condition.filter(9);
    let sql = format!(
        "WITH seat AS (
             UPDATE seats SET
                 hold_count = CASE WHEN held_until > now() THEN hold_count + 1 ELSE 1 END,
                 hold_id = nextval('holds_id_seq'),
                 held_by = $3,
                 held_until = statement_timestamp() + $6::BIGINT * interval '1 millisecond',
                 version = version + 1
             WHERE id = $2 AND {filter}
               AND (SELECT epoch FROM strategy_epoch FOR SHARE) = $7
             RETURNING hold_id, held_until, hold_count
         ), inserted AS (
             INSERT INTO holds (id, event_id, seat_id, customer_id, created_at, expires_at, locking_strategy, instance_id, fencing_token)
             SELECT seat.hold_id, $1, $2, $3, statement_timestamp(), seat.held_until, $4, $5, $8
             FROM seat
             RETURNING id
         )
         SELECT seat.hold_id, seat.held_until, seat.hold_count FROM seat, inserted"
    );
    let epoch = epoch as i64;
    // The condition's value, if it has one, is the last parameter ($9).
    let params: [&(dyn ToSql + Sync); 9] = [
        &attempt.event_id,
        &attempt.seat_id,
        &attempt.customer_id,
        &attempt.strategy,
        &attempt.instance_id,
        &ttl_ms,
        &epoch,
        &attempt.fencing_token,
        &value,
    ];
    let params = if value.is_some() { &params[..] } else { &params[..8] };
    let rows = tx.commit_with(&sql, params).await?;
    let taken = match rows.first() {
        Some(row) => Some(Taken { hold_id: row.try_get(0)?, expires_at: row.try_get(1)?, holds: row.try_get::<_, i32>(2)?.into(), fresh: true }),
        None => None,
    };
    why_not_written(tx, epoch as u64, taken).await
}

/// One hold, as the API shows it.
#[derive(Debug, Clone)]
pub struct Hold {
    pub id: i64,
    pub event_id: i64,
    pub seat_id: i64,
    pub seat_number: String,
    pub customer_id: String,
    /// `held` only while live by Postgres' clock: a `held` row past its
    /// expiry reads as `expired` even before the sweep writes it down.
    pub status: HoldStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Milliseconds left, by Postgres' clock (0 once over).
    pub remaining_ms: i64,
    pub booking_id: Option<i64>,
    pub strategy: String,
    pub instance_id: String,
    pub fencing_token: Option<i64>,
}

const HOLD_COLUMNS: &str = "h.id, h.event_id, h.seat_id, s.seat_number, h.customer_id,
    CASE WHEN h.status = 'held' AND h.expires_at <= now() THEN 'expired' ELSE h.status END AS status,
    h.created_at, h.expires_at, h.ended_at,
    CASE WHEN h.status = 'held' THEN greatest(0, (extract(epoch FROM h.expires_at - now()) * 1000)::BIGINT) ELSE 0 END AS remaining_ms,
    h.booking_id, h.locking_strategy, h.instance_id, h.fencing_token";

impl Hold {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, DbError> {
        let status: &str = row.try_get("status")?;
        Ok(Self {
            id: row.try_get("id")?,
            event_id: row.try_get("event_id")?,
            seat_id: row.try_get("seat_id")?,
            seat_number: row.try_get("seat_number")?,
            customer_id: row.try_get("customer_id")?,
            status: HoldStatus::parse(status).map_err(DbError::Data)?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            ended_at: row.try_get("ended_at")?,
            remaining_ms: row.try_get("remaining_ms")?,
            booking_id: row.try_get("booking_id")?,
            strategy: row.try_get("locking_strategy")?,
            instance_id: row.try_get("instance_id")?,
            fencing_token: row.try_get("fencing_token")?,
        })
    }
}

/// The hold, if there is one with this id.
#[tracing::instrument(name = "db.hold", skip_all)]
pub async fn hold(conn: &mut Conn, hold_id: i64) -> Result<Option<Hold>, DbError> {
    let sql = format!("SELECT {HOLD_COLUMNS} FROM holds h JOIN seats s ON s.id = h.seat_id WHERE h.id = $1");
    conn.query_opt(&sql, &[&hold_id]).await?.as_ref().map(Hold::from_row).transpose()
}

/// How many live holds the customer has, and how long until the first of
/// them ends (milliseconds, by Postgres' clock).
#[tracing::instrument(name = "db.live_holds", skip_all)]
pub async fn live_holds(conn: &mut Conn, customer_id: &str) -> Result<(i64, i64), DbError> {
    let row = conn
        .query_one(
            "SELECT count(*), coalesce(ceil(extract(epoch FROM min(expires_at) - now()) * 1000), 0)::BIGINT
             FROM holds WHERE customer_id = $1 AND status = 'held' AND expires_at > now()",
            &[&customer_id],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// What a confirm came to.
#[derive(Debug, Clone)]
pub enum Confirmed {
    /// The hold became this booking, now.
    Booked(Hold, Recorded),
    /// The hold had already been confirmed: its booking, again.
    Already(Hold, Recorded),
    /// The hold expired (by Postgres' clock, in the confirm's transaction)
    /// or was released: nothing was written.
    Ended(Hold),
    /// The hold is live but no longer keeps its seat (a strategy let another
    /// customer's hold or booking over it): nothing was written.
    Lost(Hold),
}

/// Turns a live hold into a booking, in one transaction: lock the hold,
/// judge its expiry by `now()`, lock its seat, check the hold still keeps
/// it, then write the booking and end the hold. `None`: no such hold.
///
/// The hold row is locked before the seat row, as the sweep locks them, so
/// the two never wait for each other in a circle.
#[tracing::instrument(name = "db.confirm_hold", skip_all)]
pub async fn confirm(db: &super::pipelined::Pool, hold_id: i64, instance_id: &str, idempotency_key: Option<&str>) -> Result<Option<Confirmed>, DbError> {
    let mut tx = Conn::begin(db).await?;
    let sql = format!("SELECT {HOLD_COLUMNS} FROM holds h JOIN seats s ON s.id = h.seat_id WHERE h.id = $1 FOR UPDATE OF h");
    let Some(hold) = tx.query_opt(&sql, &[&hold_id]).await?.as_ref().map(Hold::from_row).transpose()? else {
        return Ok(None);
    };
    match hold.status {
        HoldStatus::Held => {}
        HoldStatus::Confirmed => {
            let booking = super::holding(&mut tx, hold.seat_id, &hold.customer_id).await?;
            tx.commit().await?;
            return Ok(Some(match booking {
                Some(booking) => Confirmed::Already(hold, booking),
                // Its booking was deleted (an admin reset removes holds too,
                // so only by hand): nothing to replay.
                None => Confirmed::Ended(hold),
            }));
        }
        HoldStatus::Released | HoldStatus::Expired => return Ok(Some(Confirmed::Ended(hold))),
    }
    let seat = tx.query_one("SELECT hold_id, is_booked FROM seats WHERE id = $1 FOR UPDATE", &[&hold.seat_id]).await?;
    let (seat_hold, is_booked): (Option<i64>, bool) = (seat.try_get(0)?, seat.try_get(1)?);
    if is_booked || seat_hold != Some(hold.id) {
        return Ok(Some(Confirmed::Lost(hold)));
    }
    let rows = tx
        .commit_with(
            "WITH seat AS (
                 UPDATE seats SET is_booked = TRUE, booked_by = $3, booked_at = now(), version = version + 1, holders = holders + 1,
                                  hold_id = NULL, held_by = NULL, held_until = NULL, hold_count = 0
                 WHERE id = $2
                 RETURNING holders
             ), inserted AS (
                 INSERT INTO bookings (event_id, seat_id, customer_id, status, locking_strategy, instance_id, attempts, fencing_token)
                 SELECT $1, $2, $3, booking_status(seat.holders), $4, $5, 1, $6
                 FROM seat
                 RETURNING id, status
             ), ended AS (
                 UPDATE holds SET status = 'confirmed', ended_at = now(), booking_id = inserted.id FROM inserted WHERE holds.id = $7
             ), linked AS (
                 UPDATE idempotency_keys SET booking_id = inserted.id FROM inserted WHERE key = $8
             )
             SELECT inserted.id, seat.holders, inserted.status FROM inserted, seat",
            &[&hold.event_id, &hold.seat_id, &hold.customer_id, &hold.strategy, &instance_id, &hold.fencing_token, &hold.id, &idempotency_key],
        )
        .await?;
    let row = rows.first().ok_or_else(|| DbError::Data("the confirm's write returned no row".into()))?;
    let status: &str = row.try_get(2)?;
    let recorded =
        Recorded { booking_id: row.try_get(0)?, holders: row.try_get::<_, i32>(1)?.into(), status: BookingStatus::parse(status).map_err(DbError::Data)? };
    let hold = Hold { status: HoldStatus::Confirmed, booking_id: Some(recorded.booking_id), remaining_ms: 0, ..hold };
    Ok(Some(Confirmed::Booked(hold, recorded)))
}

/// Gives a hold back: a live one is `released`, one past its expiry is
/// written down as `expired` (as the sweep would), and either way the seat
/// is cleared of it. Ended holds are left as they are. Returns the hold as
/// it now stands, and whether this call cleared its seat; `None`: no such
/// hold.
#[tracing::instrument(name = "db.release_hold", skip_all)]
pub async fn release(db: &super::pipelined::Pool, hold_id: i64) -> Result<Option<(Hold, bool)>, DbError> {
    let mut tx = Conn::begin(db).await?;
    let freed = tx
        .query_opt(
            "WITH ended AS (
                 UPDATE holds SET status = CASE WHEN expires_at > now() THEN 'released' ELSE 'expired' END, ended_at = now()
                 WHERE id = $1 AND status = 'held'
                 RETURNING id, seat_id, status
             )
             UPDATE seats SET hold_id = NULL, held_by = NULL, held_until = NULL, hold_count = 0
             FROM ended WHERE seats.id = ended.seat_id AND seats.hold_id = ended.id
             RETURNING seats.id",
            &[&hold_id],
        )
        .await?
        .is_some();
    let current = hold(&mut tx, hold_id).await?;
    tx.commit().await?;
    Ok(current.map(|hold| (hold, freed)))
}

/// A seat the sweep freed: its hold ran out.
#[derive(Debug, Clone)]
pub struct Freed {
    pub event_id: i64,
    pub seat_number: String,
    pub hold_id: i64,
}

/// Writes down up to `batch` expired holds as `expired` and frees the seats
/// they still keep. `SKIP LOCKED`: a hold a confirm has locked is left to
/// that confirm (which judges it by the same clock), never waited for.
#[tracing::instrument(name = "db.sweep_holds", skip_all)]
pub async fn sweep(conn: &mut Conn, batch: i64) -> Result<(usize, Vec<Freed>), DbError> {
    let rows = conn
        .query(
            "WITH expired AS (
                 UPDATE holds SET status = 'expired', ended_at = now()
                 WHERE id IN (SELECT id FROM holds WHERE status = 'held' AND expires_at <= now()
                              ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, seat_id
             ), freed AS (
                 UPDATE seats SET hold_id = NULL, held_by = NULL, held_until = NULL, hold_count = 0
                 FROM expired WHERE seats.id = expired.seat_id AND seats.hold_id = expired.id
                 RETURNING seats.event_id, seats.seat_number, expired.id
             )
             SELECT (SELECT count(*) FROM expired), freed.event_id, freed.seat_number, freed.id
             FROM (SELECT 1) AS one LEFT JOIN freed ON TRUE",
            &[&batch],
        )
        .await?;
    let expired = match rows.first() {
        Some(row) => row.try_get::<_, i64>(0)? as usize,
        None => 0,
    };
    let mut freed = Vec::new();
    for row in &rows {
        if let Some(hold_id) = row.try_get::<_, Option<i64>>(3)? {
            freed.push(Freed { event_id: row.try_get(1)?, seat_number: row.try_get(2)?, hold_id });
        }
    }
    Ok((expired, freed))
}
