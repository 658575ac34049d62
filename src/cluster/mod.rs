//! What makes several replicas one cluster: a strategy they all apply, and a
//! register of who is alive.
//!
//! The strategy lives in Redis with a version number ([`store`]); changes are
//! published and every replica's [`listener`] applies them; [`heartbeat`]
//! announces each replica and the strategy it has applied. [`ActiveStrategy`]
//! is this replica's applied setting.

pub mod heartbeat;
pub mod listener;
pub mod store;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::strategy::StrategyName;

/// A strategy setting and the version it was stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub name: StrategyName,
    pub version: u64,
}

/// The strategy this replica applies to every booking.
///
/// A setting is applied only if its version is newer than the current one,
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
            if incoming.version <= current.version {
                return false;
            }
            previous = Some(*current);
            *current = incoming;
            true
        });
        if let Some(previous) = previous {
            crate::metrics::strategy_applied(incoming.name);
            tracing::info!(from = %previous.name, to = %incoming.name, version = incoming.version, "strategy applied");
        }
        applied
    }

    /// Notified on every applied change (the heartbeat announces it at once).
    pub fn subscribe(&self) -> watch::Receiver<Applied> {
        self.current.subscribe()
    }
}
