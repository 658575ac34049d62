//! `none`: no coordination at all.
//!
//! Every request reads the seat, spends the hold time, and writes it. Ten
//! requests that read the seat before any of them writes all see it free, and
//! all of them book it: the double booking this lab exists to show.

use super::{Ctx, LockingStrategy, Outcome};
use crate::error::Result;

pub(crate) struct Unlocked;

impl LockingStrategy for Unlocked {
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome> {
        ctx.read_hold_write().await
    }
}
