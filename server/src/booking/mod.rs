//! One booking's run, from a checked request to its answer.
//!
//! [`Bookings::book`] is the whole flow, in order:
//! 1. claim the request's Idempotency-Key, if it has one ([`idempotency`]):
//!    a key that already has an answer gets it again and books nothing;
//! 2. pass this replica's gate, closed while the cluster switches strategy;
//! 3. run the strategy the replica applies, under that setting's epoch;
//! 4. catch up with the cluster if the write found the epoch had moved on;
//! 5. count the outcome (metrics, the replica's last minute of activity);
//! 6. publish the seat change to every replica's seat-map streams;
//! 7. store the [`Answer`] under the key, for a retry to find.
//!
//! Steps 2 to 7 run in a task of their own, so a booking runs to the end
//! even if its client hangs up: it holds the gate's pass until its write is
//! done (a switch waits for it), and its answer is stored for the retry. A
//! replica that stops waits for these tasks too ([`Bookings::drain`]).
//!
//! Nothing here knows of HTTP: the HTTP layer parses the request into a
//! [`Request`] and renders the [`Reply`].

mod answer;
mod error;
pub mod idempotency;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use answer::{Answer, Decision};
pub use error::Error;
pub use idempotency::IdempotencyKey;
use idempotency::Claimed;

use crate::activity::Activity;
use crate::cluster::ActiveStrategy;
use crate::cluster::barrier::Barrier;
use crate::cluster::gate::Pass;
use crate::domain::{Applied, CustomerId, SeatNumber, StrategyName};
use crate::live::{Change, Feed};
use crate::storage;
use crate::storage::pipelined::Pool;
use crate::strategy::{Booking, Claim, Outcome, Strategies, Verdict};

/// One customer asking for one seat, checked where it came in.
#[derive(Debug, Clone)]
pub struct Request {
    pub event_id: i64,
    pub seat_number: SeatNumber,
    pub customer_id: CustomerId,
    pub key: Option<IdempotencyKey>,
}

/// What [`Bookings::book`] came to.
#[derive(Debug)]
pub enum Reply {
    /// This request's own answer.
    Answered(Answer),
    /// The answer to an earlier request with the same key; nothing was booked now.
    Replayed(Answer),
    /// The first request with this key is still running: try again after `retry_after`.
    InProgress { retry_after: Duration },
}

/// The booking service: everything one booking's run needs. Cheap to clone.
#[derive(Clone)]
pub struct Bookings(Arc<Parts>);

/// What [`Bookings`] is built from.
pub(crate) struct Parts {
    /// sqlx: the idempotency keys.
    pub db: PgPool,
    /// The bookings' own connections, which pipeline (see [`crate::storage::pipelined`]).
    pub booking_db: Pool,
    pub strategies: Strategies,
    /// The strategy and epoch this replica applies to every booking.
    pub active: Arc<ActiveStrategy>,
    /// This replica's booking gate.
    pub barrier: Arc<Barrier>,
    pub instance_id: String,
    /// How long keys live, how long a request may hold one, who this replica is.
    pub idempotency: idempotency::Settings,
    /// Live seat changes, for the seat map's streams.
    pub feed: Feed,
    /// This replica's last minute of bookings.
    pub activity: Arc<Activity>,
    /// Every booking's task: a booking whose client hung up still runs, and
    /// shutdown waits for it ([`Bookings::drain`]) before the pools close.
    pub tasks: TaskTracker,
}

impl Bookings {
    pub(crate) fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    /// Everything a booking's run uses, for the hold service, which runs
    /// its holds through the same gate, strategies and tasks.
    pub(crate) fn parts(&self) -> &Parts {
        &self.0
    }

    /// The strategies, for the admin side (clearing locks) and the gauges.
    pub(crate) fn strategies(&self) -> &Strategies {
        &self.0.strategies
    }

    /// Takes no more bookings and waits for every one under way, those whose
    /// clients hung up included, to finish and store its answer.
    pub async fn drain(&self) {
        self.0.tasks.close();
        self.0.tasks.wait().await;
    }

    /// How long keys live, and this replica's liveness number.
    pub fn idempotency(&self) -> idempotency::Settings {
        self.0.idempotency
    }

    /// Books `request` under the cluster's current strategy, or replays the
    /// answer its key already has.
    pub async fn book(&self, request: Request) -> Result<Reply, Error> {
        let Request { event_id, seat_number, customer_id, key } = request;
        let booking =
            Booking { event_id, seat_number, customer_id, instance_id: self.0.instance_id.clone(), idempotency_key: key, claim: Claim::Book };
        if let Some(key) = &booking.idempotency_key
            && let Some(earlier) = self.claim(key, &booking).await?
        {
            return Ok(earlier);
        }

        let pass = self.0.barrier.enter().await;
        let applied = self.0.active.current();
        let span = tracing::info_span!(
            "book",
            strategy = %applied.name,
            event_id = booking.event_id,
            seat = %booking.seat_number,
            customer = %booking.customer_id,
            instance = %booking.instance_id,
        );
        let run = self.0.tasks.spawn(self.clone().run(applied, pass, booking).instrument(span));
        let answer = run.await.context("the booking's task failed")??;
        Ok(Reply::Answered(answer))
    }

    /// Steps 3 to 7: the strategy, and everything its outcome updates.
    async fn run(self, applied: Applied, pass: Pass, booking: Booking) -> Result<Answer, crate::error::Error> {
        let started = Instant::now();
        let parts = &*self.0;
        let outcome = parts.strategies.book(applied, &parts.booking_db, &booking).await;
        drop(pass);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) => {
                if let Some(key) = &booking.idempotency_key
                    && let Err(release) = storage::idempotency::release(&parts.db, key.as_str()).await
                {
                    tracing::warn!(%release, "could not release the idempotency key; a retry waits for the in-flight limit");
                }
                return Err(error);
            }
        };
        if let Some(cluster) = outcome.cluster {
            // This replica missed a switch: catch up now, so the next
            // booking runs under the cluster's strategy.
            parts.active.apply(cluster);
        }
        let answer = Answer::new(applied.name, &booking, &outcome);
        crate::metrics::booking_finished(applied.name, answer.status(), answer.refusal(), started.elapsed());
        parts.activity.record(answer.status());
        if let Decision::Booked { booking_id, holders, status } = answer.decision {
            parts.feed.publish(Change::Booked {
                event_id: answer.event_id,
                seat_number: answer.seat_number.to_string(),
                customer_id: answer.customer_id.to_string(),
                instance: answer.instance.clone(),
                status,
                holders,
                booking_id,
            });
        }
        if let Some(key) = &booking.idempotency_key
            && let Err(error) = self.store(key, &answer).await
        {
            tracing::warn!(%error, "could not store the answer under the idempotency key; a retry rebuilds it");
        }
        Ok(answer)
    }

    /// Claims the request's key; `Some` reply when the request must not book
    /// (a replay, a key in use).
    async fn claim(&self, key: &IdempotencyKey, booking: &Booking) -> Result<Option<Reply>, Error> {
        let parts = &*self.0;
        let answer = match idempotency::claim(&parts.db, key.as_str(), &fingerprint(booking), parts.idempotency).await? {
            Claimed::Proceed => return Ok(None),
            Claimed::Mismatch => return Err(Error::KeyReused { key: key.clone() }),
            Claimed::InProgress { retry_after } => return Ok(Some(Reply::InProgress { retry_after })),
            Claimed::Replay { answer } => serde_json::from_value(answer).context("the key's stored answer is unreadable")?,
            Claimed::Booked { booking_id } => {
                // Booked, but the request died before its answer was stored:
                // the answer is rebuilt from the booking row.
                let answer = self.rebuild(booking, booking_id).await?;
                self.store(key, &answer).await?;
                answer
            }
        };
        crate::metrics::idempotent_replay();
        Ok(Some(Reply::Replayed(answer)))
    }

    /// The answer a booking row stands for.
    async fn rebuild(&self, booking: &Booking, booking_id: i64) -> Result<Answer, Error> {
        let mut conn = self.0.db.acquire().await?;
        let row = storage::idempotency::booked_row(&mut conn, booking_id).await?.context("the key's booking is gone")?;
        let strategy: StrategyName = row.locking_strategy.parse().map_err(anyhow::Error::msg)?;
        let status = crate::domain::BookingStatus::parse(&row.status).map_err(anyhow::Error::msg)?;
        let original = Booking { instance_id: row.instance_id.clone(), ..booking.clone() };
        let outcome = Outcome {
            verdict: Verdict::Booked(storage::Recorded { booking_id, holders: row.holders, status }),
            attempts: (strategy == StrategyName::Optimistic).then_some(row.attempts as u32),
            fencing_token: row.fencing_token,
            cluster: None,
        };
        Ok(Answer::new(strategy, &original, &outcome))
    }

    pub(crate) async fn store(&self, key: &IdempotencyKey, answer: &Answer) -> Result<(), Error> {
        let value = serde_json::to_value(answer).context("an answer is plain data")?;
        storage::idempotency::store_answer(&self.0.db, key.as_str(), &value).await?;
        Ok(())
    }
}

/// The canonical form of a request, to tell a retry from another request
/// sent with the same key.
fn fingerprint(booking: &Booking) -> String {
    serde_json::json!([booking.event_id, booking.seat_number, booking.customer_id]).to_string()
}
