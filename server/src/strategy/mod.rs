//! The eight locking strategies, one file each, and the one place that
//! chooses among them ([`Strategies::book`]).
//!
//! Every strategy books a seat through the same steps, which live in
//! [`toolkit`] (and their SQL in [`crate::storage`]); a strategy only decides
//! how the replicas coordinate around those steps. The five that take a lock
//! (`mutex`, `distributed`, `redlock`, `fenced`, `etcd`) are each a small
//! [`lock::Lock`], booked through the same [`lock::book_under`].
//!
//! Every write also checks the cluster's epoch (see [`crate::storage::epoch`]):
//! a booking that started under one strategy cannot commit after the cluster
//! has switched to another, whichever strategy either of them uses.

mod distributed;
mod etcd;
mod fenced;
mod lock;
mod mutex;
mod none;
mod optimistic;
mod pessimistic;
mod redlock;
mod toolkit;

use std::time::Duration;

use crate::config::{EtcdConfig, LockingConfig};
use crate::error::Result;
use crate::keys::Keys;
use crate::storage::pipelined::Pool;
use lock::book_under;
pub use toolkit::{Applied, Booking, Claim, CustomerId, IdempotencyKey, Outcome, Refusal, SeatNumber, StrategyName, Verdict};
pub(crate) use toolkit::{Ctx, retry_until};

/// A way of coordinating concurrent bookings of one seat that is not a lock
/// (`none`, `pessimistic`, `optimistic`); the lock strategies implement
/// [`lock::Lock`] instead.
pub(crate) trait LockingStrategy: Send + Sync {
    /// Books the seat described by `ctx`, or says why not.
    async fn book(&self, ctx: &Ctx<'_>) -> Result<Outcome>;
}

/// One instance of every strategy, built once; the applied strategy picks one
/// per request.
pub(crate) struct Strategies {
    hold: Duration,
    none: none::Unlocked,
    mutex: mutex::SeatMutexes,
    pessimistic: pessimistic::RowLock,
    optimistic: optimistic::VersionCheck,
    distributed: distributed::RedisLock,
    redlock: redlock::Redlock,
    fenced: fenced::FencedLock,
    etcd: etcd::EtcdLock,
}

impl Strategies {
    pub(crate) async fn new(
        config: &LockingConfig,
        redis: redis::aio::ConnectionManager,
        redlock_nodes: &[String],
        etcd: &EtcdConfig,
        keys: Keys,
    ) -> anyhow::Result<Self> {
        let distributed = distributed::RedisLock::new(redis, keys.clone(), config);
        Ok(Self {
            hold: config.hold(),
            none: none::Unlocked,
            mutex: mutex::SeatMutexes::default(),
            pessimistic: pessimistic::RowLock,
            optimistic: optimistic::VersionCheck::new(config),
            fenced: fenced::FencedLock::new(distributed.clone()),
            distributed,
            redlock: redlock::Redlock::new(redlock_nodes, keys.clone(), config)?,
            etcd: etcd::EtcdLock::connect(&etcd.etcd_endpoints, keys, config).await?,
        })
    }

    /// Books under the cluster setting `applied`: the one `match` over strategies.
    pub(crate) async fn book(&self, applied: Applied, db: &Pool, booking: &Booking) -> Result<Outcome> {
        let strategy = applied.name;
        let ctx = Ctx { db, booking, hold: self.hold, strategy, epoch: applied.epoch };
        match strategy {
            StrategyName::None => self.none.book(&ctx).await,
            StrategyName::Mutex => book_under(&self.mutex, &ctx).await,
            StrategyName::Pessimistic => self.pessimistic.book(&ctx).await,
            StrategyName::Optimistic => self.optimistic.book(&ctx).await,
            StrategyName::Distributed => book_under(&self.distributed, &ctx).await,
            StrategyName::Redlock => book_under(&self.redlock, &ctx).await,
            StrategyName::Fenced => book_under(&self.fenced, &ctx).await,
            StrategyName::Etcd => book_under(&self.etcd, &ctx).await,
        }
    }

    /// Forgets every lock this service holds for the event, on every Redis
    /// node and in etcd.
    pub(crate) async fn clear_locks(&self, event_id: i64) -> Result<()> {
        self.distributed.clear(event_id).await?;
        self.redlock.clear(event_id).await?;
        self.etcd.clear(event_id).await
    }

    /// How many Redlock nodes answer PING right now.
    pub(crate) async fn redlock_nodes_reachable(&self) -> usize {
        self.redlock.reachable_nodes().await
    }

    /// The `etcd` lock's lease, in milliseconds: `LOCK_TTL_MS` in whole
    /// seconds, raised to etcd's minimum.
    pub(crate) fn etcd_lease_ms(&self) -> u64 {
        self.etcd.lease().as_millis() as u64
    }

    /// How many seats the in-process mutex map tracks right now.
    pub(crate) fn tracked_mutexes(&self) -> usize {
        self.mutex.len()
    }
}
