//! The cluster's strategy epoch in Postgres: the one row every booking's
//! write checks, and every switch and reset bumps.

use sqlx::{PgConnection, PgPool};

use super::pipelined::{Conn, DbError};
use crate::domain::{Applied, StrategyName};

/// How long a switch waits for booking transactions that hold the epoch row
/// before it gives up (a replica paused inside its write would hold it).
pub(crate) const BUMP_LOCK_TIMEOUT_MS: u64 = 2000;

/// The epoch row's two columns as the cluster's setting; an error names a
/// strategy this build does not know.
fn applied(name: &str, epoch: i64) -> Result<Applied, String> {
    Ok(Applied { name: name.parse::<StrategyName>()?, epoch: epoch as u64 })
}

/// [`applied`], for a row read with sqlx.
fn decoded((name, epoch): (String, i64)) -> sqlx::Result<Applied> {
    applied(&name, epoch).map_err(|message| sqlx::Error::Decode(message.into()))
}

/// The cluster's setting; when there is none yet (a new database), `default`
/// is stored as epoch 1 first. Replicas starting together agree on one.
#[tracing::instrument(name = "db.load_epoch", skip_all)]
pub async fn load_or_seed(pool: &PgPool, default: StrategyName) -> sqlx::Result<Applied> {
    sqlx::query("INSERT INTO strategy_epoch (name, epoch) VALUES ($1, 1) ON CONFLICT (id) DO NOTHING")
        .bind(default.as_str())
        .execute(pool)
        .await?;
    load(pool).await
}

const LOAD: &str = "SELECT name, epoch FROM strategy_epoch";

/// The cluster's current setting, read from the pool or inside a transaction.
#[tracing::instrument(name = "db.load_epoch", skip_all)]
pub async fn load(db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<Applied> {
    decoded(sqlx::query_as(LOAD).fetch_one(db).await?)
}

/// [`load`], on the booking path's connection: a booking's write reads it
/// after its seat update matched nothing, to tell a switch from a seat that
/// changed.
#[tracing::instrument(name = "db.load_epoch", skip_all)]
pub async fn current(conn: &mut Conn) -> Result<Applied, DbError> {
    let row = conn.query_one(LOAD, &[]).await?;
    applied(row.try_get(0)?, row.try_get(1)?).map_err(DbError::Data)
}

/// Starts the next epoch with `name`, inside the barrier's transaction, if the
/// current one is still `expected` (else another switch got there first, and
/// this returns `None`). Waits at most [`BUMP_LOCK_TIMEOUT_MS`] for booking
/// writes that hold the row.
#[tracing::instrument(name = "db.bump_epoch", skip_all)]
pub async fn bump(tx: &mut PgConnection, expected: u64, name: StrategyName) -> sqlx::Result<Option<Applied>> {
    sqlx::query(sqlx::AssertSqlSafe(format!("SET LOCAL lock_timeout = {BUMP_LOCK_TIMEOUT_MS}"))).execute(&mut *tx).await?;
    let bumped: Option<(String, i64)> = sqlx::query_as(
        "UPDATE strategy_epoch SET name = $1, epoch = epoch + 1, changed_at = now()
         WHERE epoch = $2
         RETURNING name, epoch",
    )
    .bind(name.as_str())
    .bind(expected as i64)
    .fetch_optional(tx)
    .await?;
    bumped.map(decoded).transpose()
}
