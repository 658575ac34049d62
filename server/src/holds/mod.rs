//! Hold, then pay: a seat kept for one customer while they pay, which
//! either becomes a booking or expires and goes back on sale.
//!
//! A hold is a lease, with the failure the lab already teaches for lock
//! TTLs: a customer whose payment completes just after their hold expired,
//! while another customer has taken the seat meanwhile, must not get it.
//! Who decides "expired"? Never a replica's clock: Postgres' `now()`, in the
//! transaction that acts on the answer.
//!
//! - [`Holds::take`]: the contended step. It runs under the cluster's
//!   strategy like a booking (the same gate, the same read, `HOLD_MS`
//!   window and write, [`crate::strategy::Claim::Hold`]), so `none` and
//!   `mutex` visibly give two customers a hold on one seat and the safe
//!   strategies cannot. Its expiry is `now()` plus the TTL, in the write.
//! - [`Holds::confirm`]: one transaction that locks the hold, judges its
//!   expiry by `now()`, locks the seat, checks the hold still keeps it, and
//!   writes the booking ([`storage::holds::confirm`]). With an
//!   `Idempotency-Key` like `POST /book`.
//! - [`Holds::release`], [`Holds::get`].
//! - [`sweep`]: writes expired holds down and tells the seat maps.

pub mod sweep;

use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::Instrument;

use crate::booking::idempotency::{self, Claimed};
use crate::booking::{Answer, Bookings, Decision, Error as BookingError};
use crate::domain::{Applied, CustomerId, HoldStatus, IdempotencyKey, SeatNumber, StrategyName};
use crate::error::{Error, Result};
use crate::live::Change;
use crate::storage;
use crate::storage::holds::{Confirmed, Hold};
use crate::storage::pipelined::Conn;
use crate::strategy::{Booking, Claim, Verdict};

/// The range a request's `ttl_ms` must be in, in milliseconds.
pub const TTL_MS: std::ops::RangeInclusive<i64> = 100..=900_000;

/// How holds behave on this replica (see [`crate::config::HoldsConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A hold's TTL when the request names none.
    pub default_ttl_ms: i64,
    /// Live holds one customer may keep.
    pub per_customer: i64,
}

/// One customer asking to hold one seat, checked where it came in.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub event_id: i64,
    pub seat_number: SeatNumber,
    pub customer_id: CustomerId,
    /// Within [`TTL_MS`]; `None` takes the replica's default.
    pub ttl_ms: Option<i64>,
}

/// What [`Holds::take`] came to.
#[derive(Debug)]
pub enum Taken {
    /// The seat is held for the customer: a new hold, or (`existing`) the
    /// live one they already had. `holds` above 1: the strategy let another
    /// customer's live hold stand beside this one.
    Held { hold: Hold, holds: i64, existing: bool, strategy: StrategyName },
    /// Not held: the answer says why, as a refused booking's does.
    Refused(Answer),
    /// The customer already keeps as many live holds as allowed; the first
    /// of them ends in `retry_after`.
    TooMany { live: i64, limit: i64, retry_after: Duration },
}

/// What [`Holds::confirm`] came to.
#[derive(Debug)]
pub enum Confirmation {
    /// The hold is a booking: made now, or (`replayed`) an earlier confirm's.
    Booked { answer: Answer, replayed: bool },
    /// The hold expired or was released before this confirm: nothing written.
    Ended(Hold),
    /// The hold is live but another customer has the seat: nothing written.
    Lost(Hold),
    /// An earlier confirm with the same Idempotency-Key is still running.
    InProgress { retry_after: Duration },
}

/// The hold service. Cheap to clone.
#[derive(Clone)]
pub struct Holds {
    bookings: Bookings,
    settings: Settings,
}

impl Holds {
    pub fn new(bookings: Bookings, settings: Settings) -> Self {
        Self { bookings, settings }
    }

    /// Holds a seat under the cluster's current strategy.
    pub async fn take(&self, request: HoldRequest) -> Result<Taken> {
        let parts = self.bookings.parts();
        let ttl_ms = request.ttl_ms.unwrap_or(self.settings.default_ttl_ms);
        let (live, first_ends_ms) = storage::holds::live_holds(&mut Conn::get(&parts.booking_db).await?, &request.customer_id).await?;
        if live >= self.settings.per_customer {
            crate::metrics::hold_event("refused_cap");
            let retry_after = Duration::from_millis(first_ends_ms.max(0) as u64);
            return Ok(Taken::TooMany { live, limit: self.settings.per_customer, retry_after });
        }
        let booking = Booking {
            event_id: request.event_id,
            seat_number: request.seat_number,
            customer_id: request.customer_id,
            instance_id: parts.instance_id.clone(),
            idempotency_key: None,
            claim: Claim::Hold { ttl_ms },
        };
        let pass = parts.barrier.enter().await;
        let applied = parts.active.current();
        let span = tracing::info_span!("hold", strategy = %applied.name, event_id = booking.event_id, seat = %booking.seat_number,
            customer = %booking.customer_id, ttl_ms);
        // Its own task, like a booking: it runs to the end (and holds the
        // gate's pass until its write is done) even if the client hangs up.
        let holds = self.clone();
        let run = parts.tasks.spawn(
            async move {
                let parts = holds.bookings.parts();
                let outcome = parts.strategies.book(applied, &parts.booking_db, &booking).await;
                drop(pass);
                holds.taken(applied, &booking, outcome?).await
            }
            .instrument(span),
        );
        run.await.context("the hold's task failed")?
    }

    /// What a strategy's outcome means for a hold, told to the seat maps.
    async fn taken(&self, applied: Applied, booking: &Booking, outcome: crate::strategy::Outcome) -> Result<Taken> {
        let parts = self.bookings.parts();
        if let Some(cluster) = outcome.cluster {
            parts.active.apply(cluster);
        }
        let strategy = applied.name;
        match outcome.verdict {
            Verdict::Held(taken) => {
                let hold = storage::holds::hold(&mut Conn::get(&parts.booking_db).await?, taken.hold_id)
                    .await?
                    .context("a hold that was just written is gone")?;
                let existing = !taken.fresh;
                crate::metrics::hold_event(if existing { "existing" } else { "taken" });
                if !existing {
                    parts.feed.publish(Change::Held {
                        event_id: booking.event_id,
                        seat_number: booking.seat_number.to_string(),
                        customer_id: booking.customer_id.to_string(),
                        instance: parts.instance_id.clone(),
                        hold_id: hold.id,
                        expires_at: hold.expires_at,
                        holds: taken.holds,
                    });
                }
                Ok(Taken::Held { hold, holds: taken.holds, existing, strategy })
            }
            Verdict::Refused(_) => {
                crate::metrics::hold_event("refused");
                Ok(Taken::Refused(Answer::new(strategy, booking, &outcome)))
            }
            Verdict::Booked(_) => Err(anyhow::anyhow!("a hold's strategy wrote a booking").into()),
        }
    }

    /// Turns the hold into a booking, once: a retry (with or without the
    /// same Idempotency-Key) gets the same booking back.
    pub async fn confirm(&self, hold_id: i64, key: Option<IdempotencyKey>) -> Result<Confirmation, BookingError> {
        let parts = self.bookings.parts();
        if let Some(key) = &key {
            let fingerprint = serde_json::json!(["confirm", hold_id]).to_string();
            match idempotency::claim(&parts.db, key.as_str(), &fingerprint, parts.idempotency).await? {
                Claimed::Proceed => {}
                Claimed::Mismatch => return Err(BookingError::KeyReused { key: key.clone() }),
                Claimed::InProgress { retry_after } => return Ok(Confirmation::InProgress { retry_after }),
                Claimed::Replay { answer } => {
                    let answer = serde_json::from_value(answer).context("the key's stored answer is unreadable")?;
                    crate::metrics::idempotent_replay();
                    return Ok(Confirmation::Booked { answer, replayed: true });
                }
                // The confirm committed but its answer was not stored: confirming
                // again finds the hold confirmed and answers with its booking.
                Claimed::Booked { .. } => {}
            }
        }
        let confirmed = self.confirm_once(hold_id, key.as_ref()).await;
        if let Some(key) = &key {
            let stored = match &confirmed {
                Ok(Confirmation::Booked { answer, .. }) => self.bookings.store(key, answer).await,
                // Nothing was written: the key is free for a retry.
                _ => storage::idempotency::release(&parts.db, key.as_str()).await.map_err(BookingError::from),
            };
            if let Err(error) = stored {
                tracing::warn!(%error, "could not settle the confirm's idempotency key");
            }
        }
        Ok(confirmed?)
    }

    async fn confirm_once(&self, hold_id: i64, key: Option<&IdempotencyKey>) -> Result<Confirmation> {
        let parts = self.bookings.parts();
        let started = Instant::now();
        let confirmed = storage::holds::confirm(&parts.booking_db, hold_id, &parts.instance_id, key.map(IdempotencyKey::as_str))
            .await?
            .ok_or_else(|| unknown_hold(hold_id))?;
        let (hold, recorded, replayed) = match confirmed {
            Confirmed::Booked(hold, recorded) => (hold, recorded, false),
            Confirmed::Already(hold, recorded) => (hold, recorded, true),
            Confirmed::Ended(hold) => {
                crate::metrics::hold_event("confirm_ended");
                return Ok(Confirmation::Ended(hold));
            }
            Confirmed::Lost(hold) => {
                crate::metrics::hold_event("confirm_lost");
                return Ok(Confirmation::Lost(hold));
            }
        };
        let strategy: StrategyName = hold.strategy.parse().map_err(anyhow::Error::msg)?;
        let answer = Answer {
            event_id: hold.event_id,
            seat_number: SeatNumber::parse(&hold.seat_number).map_err(anyhow::Error::msg)?,
            customer_id: CustomerId::parse(&hold.customer_id).map_err(anyhow::Error::msg)?,
            strategy,
            instance: parts.instance_id.clone(),
            decision: Decision::Booked { booking_id: recorded.booking_id, holders: recorded.holders, status: recorded.status },
            attempts: None,
            fencing_token: hold.fencing_token,
        };
        if !replayed {
            crate::metrics::hold_event("confirmed");
            crate::metrics::booking_finished(strategy, recorded.status, None, started.elapsed());
            parts.activity.record(recorded.status);
            parts.feed.publish(Change::Booked {
                event_id: hold.event_id,
                seat_number: hold.seat_number.clone(),
                customer_id: hold.customer_id.clone(),
                instance: parts.instance_id.clone(),
                status: recorded.status,
                holders: recorded.holders,
                booking_id: recorded.booking_id,
            });
        }
        Ok(Confirmation::Booked { answer, replayed })
    }

    /// Gives the hold back (idempotent): the hold as it now stands.
    pub async fn release(&self, hold_id: i64) -> Result<Hold> {
        let parts = self.bookings.parts();
        let (hold, freed) = storage::holds::release(&parts.booking_db, hold_id).await?.ok_or_else(|| unknown_hold(hold_id))?;
        if freed {
            crate::metrics::hold_event(if hold.status == HoldStatus::Released { "released" } else { "expired" });
            parts.feed.publish(Change::Freed { event_id: hold.event_id, seat_number: hold.seat_number.clone(), hold_id });
        }
        Ok(hold)
    }

    pub async fn get(&self, hold_id: i64) -> Result<Hold> {
        let parts = self.bookings.parts();
        storage::holds::hold(&mut Conn::get(&parts.booking_db).await?, hold_id).await?.ok_or_else(|| unknown_hold(hold_id))
    }
}

fn unknown_hold(hold_id: i64) -> Error {
    Error::not_found(format!("hold {hold_id} does not exist"))
}
