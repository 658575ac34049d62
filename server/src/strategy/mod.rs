//! The seven locking strategies, one file each, behind one trait.
//!
//! Every strategy books a seat through the same steps (read the seat, spend
//! the hold time, then write the seat and its booking row in one transaction),
//! all of which live in [`crate::storage`]; a strategy only decides how the
//! replicas coordinate around those steps. [`Strategies::book`] is the one
//! place that chooses among them.
//!
//! Every write also checks the cluster's epoch (see [`crate::storage::epoch`]):
//! a booking that started under one strategy cannot commit after the cluster
//! has switched to another, whichever strategy either of them uses.

mod distributed;
mod fenced;
mod mutex;
mod none;
mod optimistic;
mod pessimistic;
mod redlock;

use std::time::{Duration, Instant};

use tracing::Instrument;

pub(crate) use distributed::RELEASE as RELEASE_IF_OWNER;

use crate::config::LockingConfig;
pub use crate::domain::{Applied, CustomerId, IdempotencyKey, Refusal, SeatNumber, StrategyName};
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::storage::pipelined::{Conn, Pool};
use crate::storage::{self, Recorded, Seat, SeatCondition, Written};

/// What a strategy did with one booking request.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub verdict: Verdict,
    /// How many compare-and-set attempts it took (`optimistic` only).
    pub attempts: Option<u32>,
    /// The fencing token the lock granted (`fenced` only).
    pub fencing_token: Option<i64>,
    /// The cluster's setting, when this booking was refused because its
    /// epoch had gone stale (`stale_strategy`).
    pub cluster: Option<Applied>,
}

impl Outcome {
    fn booked(recorded: Recorded) -> Self {
        Self { verdict: Verdict::Booked(recorded), attempts: None, fencing_token: None, cluster: None }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Verdict {
    /// The seat was written for this customer; `holders > 1` means double-booked.
    Booked(Recorded),
    Refused(Refusal),
}

/// One booking request on its way through a strategy.
#[derive(Debug, Clone)]
pub struct Booking {
    pub event_id: i64,
    pub seat_number: SeatNumber,
    pub customer_id: CustomerId,
    pub instance_id: String,
    /// The client's `Idempotency-Key`, if it sent one.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Shared by every strategy: the database, the simulated payment step, and
/// the epoch the booking started in.
pub(crate) struct Ctx<'a> {
    /// The booking path's connections (see [`crate::storage::pipelined`]).
    pub db: &'a Pool,
    pub booking: &'a Booking,
    pub hold: Duration,
    pub strategy: StrategyName,
    /// The cluster epoch this replica applied when the booking started; its
    /// write commits only while it is still current.
    pub epoch: u64,
}

impl Ctx<'_> {
    fn attempt(&self, seat_id: i64) -> storage::Attempt<'_> {
        storage::Attempt {
            event_id: self.booking.event_id,
            seat_id,
            customer_id: self.booking.customer_id.as_str(),
            strategy: self.strategy.as_str(),
            instance_id: &self.booking.instance_id,
            attempts: 1,
            fencing_token: None,
            idempotency_key: self.booking.idempotency_key.as_ref().map(IdempotencyKey::as_str),
        }
    }

    /// Reads the seat, or answers 404 naming what does not exist.
    async fn seat(&self, conn: &mut Conn) -> Result<Seat> {
        let seat = storage::seat(conn, self.booking.event_id, self.booking.seat_number.as_str()).await?;
        match seat {
            Some(seat) => Ok(seat),
            None => Err(self.seat_not_found().await),
        }
    }

    async fn seat_not_found(&self) -> Error {
        let Booking { event_id, seat_number, .. } = self.booking;
        let exists = async { storage::event_exists(&mut Conn::get(self.db).await?, *event_id).await };
        match exists.await {
            Ok(true) => Error::not_found(format!("seat '{seat_number}' does not exist in event {event_id}")),
            Ok(false) => Error::not_found(format!("event {event_id} does not exist")),
            Err(error) => error.into(),
        }
    }

    /// The simulated payment step: the window in which a race can happen.
    async fn hold(&self) {
        // tokio's timer ticks every millisecond: even a zero sleep would wait
        // for the next tick, so a zero hold skips the timer altogether.
        if self.hold.is_zero() {
            return;
        }
        tokio::time::sleep(self.hold).instrument(tracing::info_span!("payment", hold_ms = self.hold.as_millis() as u64)).await;
    }

    /// Records a refused attempt against the seat and reports it.
    async fn refuse(&self, conn: &mut Conn, seat_id: i64, refusal: Refusal) -> Result<Outcome> {
        self.refuse_with(conn, self.attempt(seat_id), refusal).await
    }

    async fn refuse_with(&self, conn: &mut Conn, attempt: storage::Attempt<'_>, refusal: Refusal) -> Result<Outcome> {
        storage::record_failure(conn, attempt, refusal.as_str()).await?;
        Ok(Outcome { verdict: Verdict::Refused(refusal), attempts: None, fencing_token: attempt.fencing_token, cluster: None })
    }

    /// The seat is booked. If this customer holds it, booking it again is
    /// answered with their booking (natural idempotency: no key needed, and
    /// nothing is recorded); anyone else is refused `seat_taken`.
    async fn taken(&self, conn: &mut Conn, attempt: storage::Attempt<'_>, seat: &Seat) -> Result<Outcome> {
        let customer = self.booking.customer_id.as_str();
        if seat.booked_by.as_deref() == Some(customer)
            && let Some(recorded) = storage::holding(conn, seat.id, customer).await?
        {
            return Ok(Outcome::booked(recorded));
        }
        self.refuse_with(conn, attempt, Refusal::SeatTaken).await
    }

    /// The booking's write, and the commit of the caller's transaction `tx`:
    /// seat and booking row together, if the booking's epoch is still the
    /// cluster's and the seat still matches `condition`.
    ///
    /// A stale epoch is refused (`stale_strategy`) and recorded here.
    /// `Ok(None)`: the seat no longer matched `condition`, nothing written;
    /// `tx` is left in autocommit for the caller to record why.
    async fn commit_booking(&self, tx: &mut Conn, attempt: storage::Attempt<'_>, condition: SeatCondition) -> Result<Option<Outcome>> {
        match storage::commit_booking(tx, self.epoch, condition, attempt).await? {
            Written::Booked(recorded) => Ok(Some(Outcome { fencing_token: attempt.fencing_token, ..Outcome::booked(recorded) })),
            Written::SeatChanged => Ok(None),
            Written::StaleEpoch(current) => {
                let outcome = self.refuse_with(tx, attempt, Refusal::StaleStrategy).await?;
                Ok(Some(Outcome { cluster: Some(current), ..outcome }))
            }
        }
    }

    /// Records a refusal for a request that never got to read the seat (its
    /// lock was busy): looks the seat up first, so an unknown seat is still 404.
    async fn refuse_unread(&self, refusal: Refusal) -> Result<Outcome> {
        let mut conn = Conn::get(self.db).await?;
        let seat = self.seat(&mut conn).await?;
        self.refuse(&mut conn, seat.id, refusal).await
    }

    /// Read, hold, write: no coordination of its own. Under `none` this is the
    /// whole strategy; `mutex` and the Redis locks run it while holding a lock.
    ///
    /// The database connection goes back to the pool during the hold, as it
    /// would around a real payment call; only `pessimistic` must keep its
    /// connection (and its row lock) for the whole hold.
    async fn read_hold_write(&self) -> Result<Outcome> {
        let seat = {
            let mut conn = Conn::get(self.db).await?;
            let seat = self.seat(&mut conn).await?;
            if seat.is_booked {
                return self.taken(&mut conn, self.attempt(seat.id), &seat).await;
            }
            seat
        };
        self.hold().await;
        // BEGIN, the write and COMMIT go to Postgres together.
        let mut tx = Conn::begin(self.db).await?;
        let Some(outcome) = self.commit_booking(&mut tx, self.attempt(seat.id), SeatCondition::Any).await? else {
            // An unconditional write only misses a seat that was deleted.
            return Err(self.seat_not_found().await);
        };
        Ok(outcome)
    }
}

/// A way of coordinating concurrent bookings of one seat.
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
}

impl Strategies {
    pub(crate) fn new(
        config: &LockingConfig,
        redis: redis::aio::ConnectionManager,
        redlock_nodes: &[String],
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
            redlock: redlock::Redlock::new(redlock_nodes, keys, config)?,
        })
    }

    /// Books under the cluster setting `applied`: the one `match` over strategies.
    pub(crate) async fn book(&self, applied: Applied, db: &Pool, booking: &Booking) -> Result<Outcome> {
        let strategy = applied.name;
        let ctx = Ctx { db, booking, hold: self.hold, strategy, epoch: applied.epoch };
        match strategy {
            StrategyName::None => self.none.book(&ctx).await,
            StrategyName::Mutex => self.mutex.book(&ctx).await,
            StrategyName::Pessimistic => self.pessimistic.book(&ctx).await,
            StrategyName::Optimistic => self.optimistic.book(&ctx).await,
            StrategyName::Distributed => self.distributed.book(&ctx).await,
            StrategyName::Redlock => self.redlock.book(&ctx).await,
            StrategyName::Fenced => self.fenced.book(&ctx).await,
        }
    }

    /// Forgets every lock this service holds for the event, on every Redis node.
    pub(crate) async fn clear_locks(&self, event_id: i64) -> Result<()> {
        self.distributed.clear(event_id).await?;
        self.redlock.clear(event_id).await
    }

    /// How many Redlock nodes answer PING right now.
    pub(crate) async fn redlock_nodes_reachable(&self) -> usize {
        self.redlock.reachable_nodes().await
    }

    /// How many seats the in-process mutex map tracks right now.
    pub(crate) fn tracked_mutexes(&self) -> usize {
        self.mutex.len()
    }
}

/// Calls `try_once` until it yields `Some` or `wait` has passed since the
/// first call; always calls it at least once.
async fn retry_until<T, F, Fut>(wait: Duration, mut try_once: F) -> Result<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + wait;
    loop {
        if let Some(value) = try_once().await? {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let pause = Duration::from_millis(rand::random_range(5..=20)).min(deadline - now);
        tokio::time::sleep(pause).await;
    }
}
