//! What makes several replicas one cluster: a strategy they all apply, a
//! barrier that switches it, and a register of who is alive.
//!
//! The strategy and its epoch live in Postgres ([`crate::storage::epoch`]),
//! where every booking's write checks them. Changes go through the
//! [`barrier`], which closes each replica's booking [`gate`] while it
//! switches; [`messages`] on one pub/sub channel drive it, and each replica's
//! [`listener`] acts on them. [`heartbeat`] announces each replica and the
//! strategy it has applied, and [`pool_share`] sizes each replica's booking
//! pool to its share of the database's connections. [`ActiveStrategy`] is
//! this replica's applied setting.

pub mod barrier;
pub mod gate;
pub mod heartbeat;
pub mod listener;
pub mod messages;
pub mod pool_share;

use tokio::sync::watch;

pub use crate::domain::Applied;

/// The strategy this replica applies to every booking.
///
/// A setting is applied only if its epoch is newer than the current one,
/// so a late or replayed message can never roll a newer setting back.
pub struct ActiveStrategy {
    current: watch::Sender<Applied>,
}

impl ActiveStrategy {
    pub fn new(initial: Applied) -> Self {
        crate::metrics::strategy_applied(initial.name);
        Self { current: watch::Sender::new(initial) }
    }

    pub fn current(&self) -> Applied {
        *self.current.borrow()
    }

    /// Applies `incoming` if it is newer; returns whether it was.
    pub fn apply(&self, incoming: Applied) -> bool {
        let mut previous = None;
        let applied = self.current.send_if_modified(|current| {
            if incoming.epoch <= current.epoch {
                return false;
            }
            previous = Some(*current);
            *current = incoming;
            true
        });
        if let Some(previous) = previous {
            crate::metrics::strategy_applied(incoming.name);
            tracing::info!(from = %previous.name, to = %incoming.name, epoch = incoming.epoch, "strategy applied");
        }
        applied
    }

    /// Notified on every applied change (the heartbeat announces it at once).
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.current.subscribe()
    }
}
