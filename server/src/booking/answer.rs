//! What a booking came to: [`Answer`], the facts an answer is made of.
//!
//! It is stored under the request's Idempotency-Key as it is (JSON), and the
//! HTTP layer renders it, status code and all, for the first answer and for
//! every replay alike: a replay is the same answer because it is the same
//! value, not a copy of a response body.

use serde::{Deserialize, Serialize};

use crate::domain::{Applied, BookingStatus, CustomerId, Refusal, SeatNumber, StrategyName};
use crate::strategy::{Booking, Outcome, Verdict};

/// One booking's result, and the request it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub event_id: i64,
    pub seat_number: SeatNumber,
    pub customer_id: CustomerId,
    /// The strategy the booking ran under.
    pub strategy: StrategyName,
    /// The replica that wrote (or refused) the booking.
    pub instance: String,
    pub decision: Decision,
    /// `optimistic` only: compare-and-set attempts made.
    pub attempts: Option<u32>,
    /// `fenced` and `etcd` only: the fencing token the write carried.
    pub fencing_token: Option<i64>,
}

/// Booked, or refused and why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The seat was written for this customer.
    Booked {
        booking_id: i64,
        /// How many bookings hold the seat with this one.
        holders: i64,
        /// `confirmed`, or `double_booked` (as the database decided it).
        status: BookingStatus,
    },
    /// Nothing was booked.
    Refused {
        reason: Refusal,
        /// With `stale_strategy`: the cluster's setting the booking missed.
        cluster: Option<Applied>,
    },
}

impl Answer {
    /// The answer to `booking`, which ran under `strategy` and came to `outcome`.
    pub(crate) fn new(strategy: StrategyName, booking: &Booking, outcome: &Outcome) -> Self {
        let decision = match outcome.verdict {
            Verdict::Booked(recorded) => {
                Decision::Booked { booking_id: recorded.booking_id, holders: recorded.holders, status: recorded.status }
            }
            Verdict::Refused(reason) => Decision::Refused { reason, cluster: outcome.cluster },
            // A booking claims the seat itself (`Claim::Book`), and its
            // write is a booking; holds are answered by `crate::holds`.
            Verdict::Held(_) => unreachable!("a booking's strategy wrote a hold"),
        };
        Self {
            event_id: booking.event_id,
            seat_number: booking.seat_number.clone(),
            customer_id: booking.customer_id.clone(),
            strategy,
            instance: booking.instance_id.clone(),
            decision,
            attempts: outcome.attempts,
            fencing_token: outcome.fencing_token,
        }
    }

    /// `confirmed`, `double_booked` or `failed`.
    pub fn status(&self) -> BookingStatus {
        match self.decision {
            Decision::Booked { status, .. } => status,
            Decision::Refused { .. } => BookingStatus::Failed,
        }
    }

    /// Why nothing was booked, if nothing was.
    pub fn refusal(&self) -> Option<Refusal> {
        match self.decision {
            Decision::Refused { reason, .. } => Some(reason),
            Decision::Booked { .. } => None,
        }
    }
}
