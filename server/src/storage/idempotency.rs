//! Idempotency keys in Postgres: claiming a key, and what it produced.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// The advisory lock class of replica liveness: each replica process holds
/// the session lock (CLASS, its owner number) on a connection of its own for
/// as long as it lives. When the process dies, Postgres ends the session and
/// the lock is free: whoever finds it free knows the owner is gone.
pub const LIVENESS_LOCK_CLASS: i32 = 0x6964_656d; // "idem"

/// Takes this replica's liveness lock on its own connection; true when held.
pub async fn hold_liveness(conn: &mut PgConnection, owner: i32) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)").bind(LIVENESS_LOCK_CLASS).bind(owner).fetch_one(conn).await
}

/// A key's row as a second request with the same key finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRecord {
    pub fingerprint: String,
    pub booking_id: Option<i64>,
    /// The booking's outcome, once the request has finished.
    pub answer: Option<Value>,
    /// Seconds since the request holding the key started.
    pub claimed_secs_ago: f64,
}

/// Claims `key` for a new request: true when this request now holds it
/// (a new key, or one that expired). Atomic across replicas: the primary key
/// lets exactly one concurrent claim in.
#[tracing::instrument(name = "db.claim_idempotency_key", skip_all)]
pub async fn claim(pool: &PgPool, key: &str, fingerprint: &str, ttl_secs: u64, owner: i32) -> sqlx::Result<bool> {
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (key, fingerprint, expires_at, owner)
         VALUES ($1, $2, now() + make_interval(secs => $3), $4)
         ON CONFLICT (key) DO UPDATE
             SET fingerprint = EXCLUDED.fingerprint, booking_id = NULL, answer = NULL,
                 claimed_at = now(), expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner
             WHERE idempotency_keys.expires_at < now()
         RETURNING key",
    )
    .bind(key)
    .bind(fingerprint)
    .bind(ttl_secs as f64)
    .bind(owner)
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// The key's row, when another request holds or held it.
#[tracing::instrument(name = "db.idempotency_key", skip_all)]
pub async fn find(pool: &PgPool, key: &str) -> sqlx::Result<Option<KeyRecord>> {
    sqlx::query_as(
        "SELECT fingerprint, booking_id, answer,
                extract(epoch FROM now() - claimed_at)::FLOAT8 AS claimed_secs_ago
         FROM idempotency_keys WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
}

/// Takes over a key whose request died: only if it is still unanswered and
/// nothing was booked under it, and either its owner's liveness lock is free
/// (the replica is gone) or its claim is older than `in_flight_secs`.
#[tracing::instrument(name = "db.take_over_idempotency_key", skip_all)]
pub async fn take_over(pool: &PgPool, key: &str, in_flight_secs: u64, owner: i32) -> sqlx::Result<bool> {
    let taken = sqlx::query(
        "UPDATE idempotency_keys SET claimed_at = now(), owner = $3
         WHERE key = $1 AND answer IS NULL AND booking_id IS NULL
           AND (claimed_at < now() - make_interval(secs => $2)
                OR (owner IS NOT NULL AND owner <> $3 AND pg_try_advisory_xact_lock_shared($4, owner)))",
    )
    .bind(key)
    .bind(in_flight_secs as f64)
    .bind(owner)
    .bind(LIVENESS_LOCK_CLASS)
    .execute(pool)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Records what the key's request came to.
#[tracing::instrument(name = "db.store_idempotent_answer", skip_all)]
pub async fn store_answer(pool: &PgPool, key: &str, answer: &Value) -> sqlx::Result<()> {
    sqlx::query("UPDATE idempotency_keys SET answer = $2 WHERE key = $1")
        .bind(key)
        .bind(answer)
        .execute(pool)
        .await?;
    Ok(())
}

/// Lets go of a key whose request wrote nothing (it failed with 503), so a
/// retry can run at once.
#[tracing::instrument(name = "db.release_idempotency_key", skip_all)]
pub async fn release(pool: &PgPool, key: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND booking_id IS NULL AND answer IS NULL")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes up to `batch` expired keys; how many it deleted.
#[tracing::instrument(name = "db.expire_idempotency_keys", skip_all)]
pub async fn expire(pool: &PgPool, batch: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_keys WHERE key IN (
             SELECT key FROM idempotency_keys WHERE expires_at < now() LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// A booking as the answer to a replay needs it, when the request that made
/// it died before its answer was stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BookedRow {
    pub booking_id: i64,
    /// Holders of the seat up to and including this booking.
    pub holders: i64,
    /// `confirmed` or `double_booked`, as `booking_status()` decides.
    pub status: String,
    pub locking_strategy: String,
    pub instance_id: String,
    pub attempts: i32,
    pub fencing_token: Option<i64>,
}

pub async fn booked_row(conn: &mut PgConnection, booking_id: i64) -> sqlx::Result<Option<BookedRow>> {
    sqlx::query_as(
        "SELECT booking_id, holders, booking_status(holders) AS status, locking_strategy, instance_id, attempts, fencing_token
         FROM (SELECT b.id AS booking_id,
                (SELECT count(*) FROM bookings h WHERE h.seat_id = b.seat_id AND h.status IN ('confirmed', 'double_booked')
                   AND h.id <= b.id) AS holders,
                b.locking_strategy, b.instance_id, b.attempts, b.fencing_token
         FROM bookings b WHERE b.id = $1) AS booked",
    )
    .bind(booking_id)
    .fetch_optional(conn)
    .await
}
