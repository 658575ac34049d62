//! Live seat changes, for the seat map: what one replica writes, every
//! replica's streams show.
//!
//! The replica that commits a booking (or resets or deletes an event)
//! publishes a [`Change`] on one Redis pub/sub channel. Every replica holds
//! one subscription to it ([`feed::subscribe_loop`]) and fans each change out
//! to its own Server-Sent-Event streams through a tokio `broadcast` channel.
//! Neither side can slow a booking down:
//! - a booking hands its change to a bounded queue with `try_send` and goes
//!   on; a publisher task does the `PUBLISH` ([`feed::publish_loop`]);
//! - a stream that reads too slowly falls behind in the broadcast channel,
//!   loses the oldest changes, and is told to resync; the others never wait
//!   for it.
//!
//! Pub/sub drops what is sent while a replica is disconnected, so after
//! every (re)subscription the replica tells its streams to resync too: the
//! page then reloads the event from `GET /events/{id}`.

pub mod feed;

use serde::{Deserialize, Serialize};

use crate::domain::BookingStatus;

pub use feed::Feed;

/// One change to an event's seats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A booking committed: the seat now has `holders` holders.
    Booked {
        event_id: i64,
        seat_number: String,
        customer_id: String,
        /// The replica that wrote the booking.
        instance: String,
        status: BookingStatus,
        holders: i64,
        booking_id: i64,
    },
    /// A hold was taken: the seat is kept for `customer_id` until
    /// `expires_at` (Postgres' clock); `holds` above 1 means the strategy
    /// let two customers hold it.
    Held {
        event_id: i64,
        seat_number: String,
        customer_id: String,
        instance: String,
        hold_id: i64,
        expires_at: chrono::DateTime<chrono::Utc>,
        holds: i64,
    },
    /// The seat's hold `hold_id` ended without a booking (released, or
    /// expired and swept): the seat is on sale again.
    Freed { event_id: i64, seat_number: String, hold_id: i64 },
    /// Every seat of the event was freed (or the event deleted).
    Reset { event_id: i64 },
}

impl Change {
    pub fn event_id(&self) -> i64 {
        match self {
            Self::Booked { event_id, .. } | Self::Held { event_id, .. } | Self::Freed { event_id, .. } | Self::Reset { event_id } => *event_id,
        }
    }
}
