//! What every request handler shares: [`AppState`].
//!
//! Its own module, below both `app` (which builds it) and `http` (which
//! serves with it), so that nothing has to import the application to use it.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;
use sqlx::PgPool;

use crate::cluster::ActiveStrategy;
use crate::cluster::barrier::Barrier;
use crate::config::LockingConfig;
use crate::booking::Bookings;
use crate::keys::Keys;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

pub struct Shared {
    /// sqlx: everything but the bookings themselves.
    pub db: PgPool,
    /// The bookings' own connections, which pipeline (see [`crate::storage::pipelined`]).
    pub booking_db: crate::storage::pipelined::Pool,
    /// The main Redis: heartbeats, the switch barrier, single-node locks.
    pub redis: ConnectionManager,
    pub keys: Keys,
    pub instance_id: String,
    pub service_name: String,
    /// The booking service: one booking's run, from key to stored answer.
    pub bookings: Bookings,
    /// The hold service: hold a seat, confirm or release the hold.
    pub holds: crate::holds::Holds,
    /// How often this replica sweeps expired holds.
    pub hold_sweep: Duration,
    /// The strategy and epoch this replica applies to every booking.
    pub active: Arc<ActiveStrategy>,
    /// This replica's booking gate, and the coordinator of the switches and
    /// resets it is asked for.
    pub barrier: Arc<Barrier>,
    pub heartbeat_interval: Duration,
    pub metrics: PrometheusHandle,
    /// The hold, TTLs and waits this replica books with, as `GET /admin/strategy` shows them.
    pub locking: LockingConfig,
    /// Live seat changes: published after each booking, read by the seat map's streams.
    pub feed: crate::live::Feed,
    /// This replica's last minute of bookings, reported in its heartbeat.
    pub activity: Arc<crate::activity::Activity>,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
