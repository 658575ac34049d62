//! `optimistic`: no lock; a version check at write time.
//!
//! Read the seat and its version, hold, then write only if the version is
//! unchanged (`UPDATE … WHERE version = $read`). The loser of a race writes
//! nothing, backs off (exponentially, with jitter) and reads again, up to the
//! configured number of retries. The response says how many attempts it took.

use std::time::Duration;

use super::{Ctx, LockingStrategy, Outcome, Refusal};
use crate::config::LockingConfig;
use crate::error::Result;
use crate::storage::pipelined::Conn;
use crate::storage::{self, SeatCondition};

pub(crate) struct VersionCheck {
    max_retries: u32,
    first_backoff: Duration,
}

impl VersionCheck {
    pub(crate) fn new(config: &LockingConfig) -> Self {
        Self { max_retries: config.optimistic_max_retries, first_backoff: Duration::from_millis(config.optimistic_backoff_ms) }
    }

    /// Backoff before retry `retry` (1-based): base·2^(retry-1), plus up to
    /// 50 % jitter so that losers do not all come back at the same instant.
    fn backoff(&self, retry: u32) -> Duration {
        let base = self.first_backoff.saturating_mul(1 << (retry - 1).min(16));
        let jitter = base.mul_f64(rand::random_range(0.0..0.5));
        base + jitter
    }
}

impl LockingStrategy for VersionCheck {
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let seat = ctx.seat(&mut Conn::get(ctx.db).await?).await?;
            let attempt = storage::Attempt { attempts: attempts as i32, ..ctx.attempt(seat.id) };
            if let Some(outcome) = ctx.unavailable(&mut Conn::get(ctx.db).await?, attempt, &seat).await? {
                return Ok(Outcome { attempts: Some(attempts), ..outcome });
            }
            // No connection is held during the hold: nothing is locked, the
            // version check at write time is the whole coordination.
            ctx.hold().await;
            let mut tx = Conn::begin(ctx.db).await?;
            if let Some(outcome) = ctx.commit_booking(&mut tx, attempt, SeatCondition::Version(seat.version)).await? {
                return Ok(Outcome { attempts: Some(attempts), ..outcome });
            }
            // The version had moved on: nothing was written.
            if attempts > self.max_retries {
                let outcome = ctx.refuse_with(&mut tx, attempt, Refusal::RetriesExhausted).await?;
                return Ok(Outcome { attempts: Some(attempts), ..outcome });
            }
            drop(tx);
            crate::metrics::optimistic_retry(ctx.strategy);
            tokio::time::sleep(self.backoff(attempts)).await;
        }
    }
}
