//! All seat and booking SQL, in one place.
//!
//! Every locking strategy calls these functions; strategies differ only in how
//! they coordinate around them, never in the SQL itself. Functions that run
//! inside a strategy's critical section take a [`pipelined::Conn`], the
//! booking path's connection, so the same query works in autocommit and
//! inside a transaction; the rest use sqlx.
//!
//! - [`pipelined`]: the booking path's connections, which send `BEGIN` with a
//!   transaction's first statement and `COMMIT` with its last.
//! - [`seats`]: events and seats, read and reset.
//! - [`booking`]: the one write every booking ends with, seat and booking row together.
//! - [`holds`]: seat holds: taken (a strategy's other write), confirmed,
//!   released, swept once expired.
//! - [`epoch`]: the cluster's strategy epoch, which that write checks.
//! - [`idempotency`]: idempotency keys, what they claimed and what they answered.
//! - [`stats`]: double bookings and counts by outcome.

pub mod booking;
pub mod epoch;
pub mod holds;
pub mod idempotency;
pub mod pipelined;
pub mod seats;
pub mod stats;

pub use booking::{Attempt, Recorded, SeatCondition, Written, commit_booking, holding, record_failure};
pub use seats::{Availability, Event, Holder, Seat, available_seats, holders, create_event, delete_event, event, event_exists, fence_seat, reset_event, seat, seat_by_number, seat_for_update, seats, seats_page};
pub use stats::{DoubleBooking, Stats, Totals, double_bookings, stats};
