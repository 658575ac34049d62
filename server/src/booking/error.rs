//! Why a booking could not be answered at all (a refusal is an answer:
//! see [`super::Decision`]).

use super::idempotency::IdempotencyKey;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Idempotency-Key was first used with a different request.
    #[error("Idempotency-Key {key} was first used with a different request")]
    KeyReused { key: IdempotencyKey },
    /// The seat or event does not exist, a backend is down (nothing was
    /// written), or a bug.
    #[error(transparent)]
    Failed(#[from] crate::error::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self::Failed(error.into())
    }
}

impl From<anyhow::Error> for Error {
    fn from(error: anyhow::Error) -> Self {
        Self::Failed(error.into())
    }
}
