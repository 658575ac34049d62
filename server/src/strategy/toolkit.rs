//! The toolkit every strategy books with: the request ([`Booking`]), what
//! a strategy answers ([`Outcome`]), and the steps ([`Ctx`]): read the seat,
//! spend the hold time, write the seat and its booking row (or, for a
//! [`Claim::Hold`], its hold row) in one transaction, record a refusal. The
//! SQL itself lives in [`crate::storage`]; a strategy only decides how the
//! replicas coordinate around these steps.

use std::time::{Duration, Instant};

use tracing::Instrument;

pub use crate::domain::{Applied, CustomerId, IdempotencyKey, Refusal, SeatNumber, StrategyName};
use crate::error::{Error, Result};
use crate::storage::pipelined::{Conn, Pool};
use crate::storage::holds::Taken;
use crate::storage::{self, Availability, Recorded, Seat, SeatCondition, Written};

/// What a strategy did with one booking request.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub verdict: Verdict,
    /// How many compare-and-set attempts it took (`optimistic` only).
    pub attempts: Option<u32>,
    /// The fencing token the lock granted (`fenced` and `etcd` only).
    pub fencing_token: Option<i64>,
    /// The cluster's setting, when this booking was refused because its
    /// epoch had gone stale (`stale_strategy`).
    pub cluster: Option<Applied>,
}

impl Outcome {
    pub(super) fn booked(recorded: Recorded) -> Self {
        Self { verdict: Verdict::Booked(recorded), attempts: None, fencing_token: None, cluster: None }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Verdict {
    /// The seat was written for this customer; `holders > 1` means double-booked.
    Booked(Recorded),
    /// A hold on the seat was written for this customer (or they already
    /// had one); `holds > 1` means the strategy let two holds through.
    Held(Taken),
    Refused(Refusal),
}

/// What a request claims of its seat: the seat itself (`POST /book`), or a
/// hold on it for `ttl_ms` (`POST /holds`). The strategies coordinate both
/// the same way; only the final write differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Book,
    Hold { ttl_ms: i64 },
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
    pub claim: Claim,
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
    pub(super) fn attempt(&self, seat_id: i64) -> storage::Attempt<'_> {
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
    pub(super) async fn seat(&self, conn: &mut Conn) -> Result<Seat> {
        let seat = storage::seat(conn, self.booking.event_id, self.booking.seat_number.as_str()).await?;
        match seat {
            Some(seat) => Ok(seat),
            None => Err(self.seat_not_found().await),
        }
    }

    pub(super) async fn seat_not_found(&self) -> Error {
        let Booking { event_id, seat_number, .. } = self.booking;
        let exists = async { storage::event_exists(&mut Conn::get(self.db).await?, *event_id).await };
        match exists.await {
            Ok(true) => Error::not_found(format!("seat '{seat_number}' does not exist in event {event_id}")),
            Ok(false) => Error::not_found(format!("event {event_id} does not exist")),
            Err(error) => error.into(),
        }
    }

    /// The simulated payment step: the window in which a race can happen.
    pub(super) async fn hold(&self) {
        // tokio's timer ticks every millisecond: even a zero sleep would wait
        // for the next tick, so a zero hold skips the timer altogether.
        if self.hold.is_zero() {
            return;
        }
        tokio::time::sleep(self.hold).instrument(tracing::info_span!("payment", hold_ms = self.hold.as_millis() as u64)).await;
    }

    /// Records a refused attempt against the seat and reports it.
    pub(super) async fn refuse(&self, conn: &mut Conn, seat_id: i64, refusal: Refusal) -> Result<Outcome> {
        self.refuse_with(conn, self.attempt(seat_id), refusal).await
    }

    pub(super) async fn refuse_with(&self, conn: &mut Conn, attempt: storage::Attempt<'_>, refusal: Refusal) -> Result<Outcome> {
        storage::record_failure(conn, attempt, refusal.as_str()).await?;
        Ok(Outcome { verdict: Verdict::Refused(refusal), attempts: None, fencing_token: attempt.fencing_token, cluster: None })
    }

    /// What this request gets when the seat is not free for it, or `None`
    /// when it is (free, or held by this customer who now books it).
    ///
    /// Booked by this customer: booking again is answered with their
    /// booking (natural idempotency: no key needed, nothing recorded). Held
    /// by this customer: holding again is answered with their hold. Anyone
    /// else is refused, `seat_taken` or `seat_held`, and that is recorded.
    pub(super) async fn unavailable(&self, conn: &mut Conn, attempt: storage::Attempt<'_>, seat: &Seat) -> Result<Option<Outcome>> {
        let customer = self.booking.customer_id.as_str();
        let refusal = match seat.availability(customer) {
            Availability::Free => return Ok(None),
            Availability::HeldByThem => match (self.booking.claim, seat.hold_id, seat.held_until) {
                (Claim::Book, ..) => return Ok(None),
                (Claim::Hold { .. }, Some(hold_id), Some(expires_at)) => {
                    let taken = Taken { hold_id, expires_at, holds: 1, fresh: false };
                    return Ok(Some(Outcome { verdict: Verdict::Held(taken), attempts: None, fencing_token: None, cluster: None }));
                }
                (Claim::Hold { .. }, ..) => Refusal::SeatHeld,
            },
            Availability::HeldByOther => Refusal::SeatHeld,
            Availability::Booked => {
                if self.booking.claim == Claim::Book
                    && seat.booked_by.as_deref() == Some(customer)
                    && let Some(recorded) = storage::holding(conn, seat.id, customer).await?
                {
                    return Ok(Some(Outcome::booked(recorded)));
                }
                Refusal::SeatTaken
            }
        };
        self.refuse_with(conn, attempt, refusal).await.map(Some)
    }

    /// The booking's write, and the commit of the caller's transaction `tx`:
    /// seat and booking row together, if the booking's epoch is still the
    /// cluster's and the seat still matches `condition`.
    ///
    /// A stale epoch is refused (`stale_strategy`) and recorded here.
    /// `Ok(None)`: the seat no longer matched `condition`, nothing written;
    /// `tx` is left in autocommit for the caller to record why.
    pub(super) async fn commit_booking(&self, tx: &mut Conn, attempt: storage::Attempt<'_>, condition: SeatCondition) -> Result<Option<Outcome>> {
        let verdict = match self.booking.claim {
            Claim::Book => storage::commit_booking(tx, self.epoch, condition, attempt).await?.map(Verdict::Booked),
            Claim::Hold { ttl_ms } => storage::holds::commit_hold(tx, self.epoch, condition, attempt, ttl_ms).await?.map(Verdict::Held),
        };
        match verdict {
            Written::Done(verdict) => Ok(Some(Outcome { verdict, attempts: None, fencing_token: attempt.fencing_token, cluster: None })),
            Written::SeatChanged => Ok(None),
            Written::StaleEpoch(current) => {
                let outcome = self.refuse_with(tx, attempt, Refusal::StaleStrategy).await?;
                Ok(Some(Outcome { cluster: Some(current), ..outcome }))
            }
        }
    }

    /// Records a refusal for a request that never got to read the seat (its
    /// lock was busy): looks the seat up first, so an unknown seat is still 404.
    pub(super) async fn refuse_unread(&self, refusal: Refusal) -> Result<Outcome> {
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
    pub(super) async fn read_hold_write(&self) -> Result<Outcome> {
        let seat = {
            let mut conn = Conn::get(self.db).await?;
            let seat = self.seat(&mut conn).await?;
            if let Some(outcome) = self.unavailable(&mut conn, self.attempt(seat.id), &seat).await? {
                return Ok(outcome);
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

    /// Read, stamp, hold, write, for a lock that mints fencing tokens
    /// (`fenced`, `etcd`): the seat row takes `token` only if it is newer
    /// than the one it holds, and the final write succeeds only while the
    /// stamp is still `token`. A holder whose lock lapsed (paused past its
    /// TTL or lease) finds a newer token there and writes nothing: the
    /// storage refuses the stale holder, which a lock alone cannot do.
    pub(super) async fn read_fence_hold_write(&self, token: i64) -> Result<Outcome> {
        let mut conn = Conn::get(self.db).await?;
        let seat = self.seat(&mut conn).await?;
        let attempt = storage::Attempt { fencing_token: Some(token), ..self.attempt(seat.id) };
        let Some(seat) = storage::fence_seat(&mut conn, seat.id, token).await? else {
            crate::metrics::fencing_rejected(self.strategy);
            return self.refuse_with(&mut conn, attempt, Refusal::StaleToken).await;
        };
        if let Some(outcome) = self.unavailable(&mut conn, attempt, &seat).await? {
            return Ok(outcome);
        }
        drop(conn);
        self.hold().await;
        let mut tx = Conn::begin(self.db).await?;
        match self.commit_booking(&mut tx, attempt, SeatCondition::FencingToken(token)).await? {
            Some(outcome) => Ok(outcome),
            // A newer token touched the seat: nothing was written.
            None => {
                crate::metrics::fencing_rejected(self.strategy);
                self.refuse_with(&mut tx, attempt, Refusal::StaleToken).await
            }
        }
    }
}

/// Calls `try_once` until it yields `Some` or `wait` has passed since the
/// first call; always calls it at least once.
pub(crate) async fn retry_until<T, F, Fut>(wait: Duration, mut try_once: F) -> Result<Option<T>>
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
