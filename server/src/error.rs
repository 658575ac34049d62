//! What can go wrong below the HTTP layer: in the strategies, storage and
//! the cluster's coordination.
//!
//! Four kinds, by what a caller can do about them: the thing asked for does
//! not exist, it clashes with something under way, a backend is down
//! (nothing was written), or a bug. Backend errors are sorted here, once:
//! a pool that cannot hand out a connection, a broken connection, Postgres
//! shutting down and a row lock held past `lock_timeout` are all
//! "unavailable", not bugs. The HTTP layer maps each kind to a status
//! (`crate::http::error`); nothing here knows of status codes.

use crate::storage::pipelined::DbError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing (an event, a seat) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with something under way (another switch).
    #[error("{0}")]
    Conflict(String),
    /// A backend (Postgres or a lock service) cannot be reached; nothing was written.
    #[error("{what} is unavailable: {detail}")]
    Unavailable { what: &'static str, detail: String },
    /// A bug or an unexpected backend failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SQLSTATE of a statement that gave up waiting for a lock (`lock_timeout`).
pub(crate) const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Whether `error` is Postgres giving up on a row lock after `lock_timeout`.
pub(crate) fn is_lock_timeout(error: &DbError) -> bool {
    error.code() == Some(LOCK_NOT_AVAILABLE)
}

/// Postgres itself saying it is going away or cannot serve: the connection
/// exception (08), insufficient resources (53) and operator intervention (57:
/// admin shutdown, crash shutdown, starting up) classes.
fn is_outage_code(code: &str) -> bool {
    ["08", "53", "57"].iter().any(|class| code.starts_with(class))
}

const LOCK_HELD_TOO_LONG: &str =
    "a row lock stayed held past DATABASE_LOCK_TIMEOUT_MS (a paused or stuck transaction?); nothing was written";

impl Error {
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    fn database_unavailable(detail: impl Into<String>) -> Self {
        Self::Unavailable { what: "database", detail: detail.into() }
    }
}

impl From<sqlx::Error> for Error {
    /// A pool that cannot hand out a connection means Postgres is unreachable,
    /// which is an outage, not a bug.
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                Self::database_unavailable(error.to_string())
            }
            sqlx::Error::Database(ref db) if db.code().is_some_and(|code| is_outage_code(&code)) => {
                Self::database_unavailable(error.to_string())
            }
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
                Self::database_unavailable(LOCK_HELD_TOO_LONG)
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<DbError> for Error {
    /// The booking path's errors, sorted as sqlx's are: a connection that
    /// cannot be had or that broke, and Postgres going away, are outages.
    fn from(error: DbError) -> Self {
        let outage = match &error {
            DbError::Pool(_) => true,
            DbError::Postgres(postgres) => match postgres.code() {
                Some(code) => is_outage_code(code.code()),
                // No SQLSTATE: the connection itself failed (closed, reset).
                None => postgres.is_closed() || std::error::Error::source(postgres).is_some_and(|source| source.is::<std::io::Error>()),
            },
            DbError::Data(_) => false,
        };
        if outage {
            Self::database_unavailable(error.to_string())
        } else if is_lock_timeout(&error) {
            Self::database_unavailable(LOCK_HELD_TOO_LONG)
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<redis::RedisError> for Error {
    /// Every Redis failure on the booking path means "the lock service is not
    /// there": refuse, and write nothing.
    fn from(error: redis::RedisError) -> Self {
        Self::Unavailable { what: "redis", detail: error.to_string() }
    }
}
