//! Exactly-once booking: the key a client sends as `Idempotency-Key`.
//!
//! A client that gets no answer (its replica died, the connection dropped)
//! cannot tell whether it booked. With a key it can simply send the same
//! request again, to any replica: the first request with a key claims it in
//! Postgres; the booking's own transaction records the booking the key made
//! (so a crash leaves both or neither); the answer is stored once it is
//! known; and every later request with the key gets that answer back, with
//! `Idempotent-Replayed: true`, and books nothing. Following the IETF draft
//! "The Idempotency-Key HTTP Header Field" and Stripe's API:
//! - the same key with a different request is refused (422);
//! - the same key while its first request still runs gets 409
//!   `request_in_progress`; a claim older than the in-flight limit belongs to
//!   a request that died, and the next retry takes it over;
//! - keys expire (24 h by default) and a background task deletes them.
//!
//! Why one key never books twice, under every strategy (`none` and `mutex`
//! included): every strategy's final write is one transaction
//! ([`crate::storage::booking::commit_booking`]), and that transaction also
//! sets the key's `booking_id`. A retry that finds the key with a booking
//! rebuilds the answer from it instead of booking; one that finds none knows
//! nothing was committed. A request whose replica died is recognised at once:
//! each replica process holds a session advisory lock for its whole life
//! ([`hold_liveness`]), which Postgres frees when the process's connections
//! die, and a claim names the process that holds it.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub use crate::domain::IdempotencyKey;
use crate::error::Result;
use crate::storage::idempotency as store;

/// How long keys live, how long a request may hold one, and who this
/// replica is.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub ttl: Duration,
    pub in_flight: Duration,
    /// This replica process's liveness number (see [`hold_liveness`]).
    pub owner: i32,
}

/// How long a request waits for the first request with its key to finish
/// (or for its owner to be found dead) before it answers `request_in_progress`.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(2);

/// What a request with a key may do.
#[derive(Debug)]
pub enum Claimed {
    /// It holds the key: book.
    Proceed,
    /// The key already has an answer (a stored [`super::Answer`]): send it again.
    Replay { answer: Value },
    /// The key booked, but its request died before its answer was stored.
    Booked { booking_id: i64 },
    /// Another request holds the key right now.
    InProgress { retry_after: Duration },
    /// The key was used with a different request.
    Mismatch,
}

/// Claims `key` for the request whose canonical form is `fingerprint`,
/// waiting up to [`WAIT_FOR_FIRST`] for an earlier request with the key to
/// finish or to be found dead.
pub async fn claim(db: &PgPool, key: &str, fingerprint: &str, settings: Settings) -> Result<Claimed> {
    let deadline = Instant::now() + WAIT_FOR_FIRST;
    loop {
        if store::claim(db, key, fingerprint, settings.ttl.as_secs(), settings.owner).await? {
            return Ok(Claimed::Proceed);
        }
        // None: expired and deleted between the two statements; claim again.
        if let Some(record) = store::find(db, key).await? {
            if record.fingerprint != fingerprint {
                return Ok(Claimed::Mismatch);
            }
            if let Some(answer) = record.answer {
                return Ok(Claimed::Replay { answer });
            }
            if let Some(booking_id) = record.booking_id {
                return Ok(Claimed::Booked { booking_id });
            }
            if store::take_over(db, key, settings.in_flight.as_secs(), settings.owner).await? {
                // A warning: it means a replica died (or froze) mid-request.
                tracing::warn!(key, "took over an idempotency key whose request died");
                crate::metrics::idempotency_key_taken_over();
                return Ok(Claimed::Proceed);
            }
            if Instant::now() >= deadline {
                let held = Duration::from_secs_f64(record.claimed_secs_ago.max(0.0));
                return Ok(Claimed::InProgress { retry_after: settings.in_flight.saturating_sub(held).max(Duration::from_secs(1)) });
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Holds this replica's liveness lock for as long as the process lives, on a
/// connection taken out of the pool for it: when the process dies, Postgres
/// ends the session and frees the lock, and a retry of a request the replica
/// was serving takes its key over at once. Re-takes the lock after Postgres
/// restarts; stops when `cancel` fires.
pub async fn hold_liveness(db: PgPool, owner: i32, cancel: CancellationToken) {
    loop {
        let held = hold_liveness_once(&db, owner);
        tokio::select! {
            _ = cancel.cancelled() => return,
            result = held => if let Err(error) = result {
                tracing::warn!(%error, "lost the idempotency liveness lock; taking it again");
            },
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Takes the liveness lock and keeps its session alive; returns only when
/// the session breaks.
async fn hold_liveness_once(db: &PgPool, owner: i32) -> anyhow::Result<()> {
    let mut conn = db.acquire().await?.detach();
    anyhow::ensure!(store::hold_liveness(&mut conn, owner).await?, "liveness lock {owner} is held by another session");
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
    }
}

/// Deletes expired keys, a batch a minute, until `cancel` fires.
pub async fn expire_keys(db: PgPool, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Small batches, SKIP LOCKED: never in a booking's way.
        loop {
            match store::expire(&db, 1000).await {
                Ok(1000) => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not delete expired idempotency keys");
                    break;
                }
            }
        }
    }
}
