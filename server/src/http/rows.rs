//! What the API shows of the rows storage returns: events, seats, the
//! bookings that hold them, double bookings and counts by outcome.
//!
//! Storage returns its own row types and knows nothing of the API's
//! contract; these are the API's schemas, each made from its row by a
//! `From`. A column can change without the contract changing by accident,
//! and the other way round.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::storage;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Event {
    id: i64,
    name: String,
    venue: String,
    event_date: DateTime<Utc>,
    total_seats: i32,
}

impl From<storage::Event> for Event {
    fn from(row: storage::Event) -> Self {
        let storage::Event { id, name, venue, event_date, total_seats } = row;
        Self { id, name, venue, event_date, total_seats }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Seat {
    id: i64,
    event_id: i64,
    seat_number: String,
    section: String,
    row_name: String,
    pub(super) is_booked: bool,
    booked_by: Option<String>,
    booked_at: Option<DateTime<Utc>>,
    version: i64,
    fencing_token: i64,
    /// Whether a live hold keeps the seat (see `POST /holds`), by the
    /// database's clock when the seat was read.
    pub(super) is_held: bool,
    /// With `is_held`: whose hold, which one, and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    held_until: Option<DateTime<Utc>>,
}

impl From<storage::Seat> for Seat {
    fn from(row: storage::Seat) -> Self {
        // An expired hold is history: the seat shows only a live one.
        let live = row.hold_live;
        Self {
            id: row.id,
            event_id: row.event_id,
            seat_number: row.seat_number,
            section: row.section,
            row_name: row.row_name,
            is_booked: row.is_booked,
            booked_by: row.booked_by,
            booked_at: row.booked_at,
            version: row.version,
            fencing_token: row.fencing_token,
            is_held: live,
            held_by: row.held_by.filter(|_| live),
            hold_id: row.hold_id.filter(|_| live),
            held_until: row.held_until.filter(|_| live),
        }
    }
}

/// A booking that holds a seat: the seat map shows who, and which replica wrote it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(super) struct Holder {
    seat_number: String,
    customer_id: String,
    /// The replica that wrote the booking.
    instance: String,
    /// `confirmed` or `double_booked`.
    status: String,
    booking_id: i64,
}

impl From<storage::Holder> for Holder {
    fn from(row: storage::Holder) -> Self {
        let storage::Holder { seat_number, customer_id, instance, status, booking_id } = row;
        Self { seat_number, customer_id, instance, status, booking_id }
    }
}

/// A seat that more than one booking holds.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DoubleBooking {
    event_id: i64,
    seat_number: String,
    booking_count: i64,
    customers: Vec<String>,
}

impl From<storage::DoubleBooking> for DoubleBooking {
    fn from(row: storage::DoubleBooking) -> Self {
        let storage::DoubleBooking { event_id, seat_number, booking_count, customers } = row;
        Self { event_id, seat_number, booking_count, customers }
    }
}

/// Counts of booking attempts by outcome.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(super) struct Totals {
    confirmed: i64,
    failed: i64,
    double_booked: i64,
    total: i64,
    /// Failed attempts by reason (`seat_taken`, `lock_busy`, ...).
    reasons: std::collections::BTreeMap<String, i64>,
    /// Optimistic compare-and-set conflicts that were retried.
    retries: i64,
}

impl From<storage::Totals> for Totals {
    fn from(totals: storage::Totals) -> Self {
        let storage::Totals { confirmed, failed, double_booked, total, reasons, retries } = totals;
        Self { confirmed, failed, double_booked, total, reasons, retries }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct StrategyTotals {
    strategy: String,
    #[serde(flatten)]
    totals: Totals,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Stats {
    totals: Totals,
    by_strategy: Vec<StrategyTotals>,
}

impl From<storage::Stats> for Stats {
    fn from(stats: storage::Stats) -> Self {
        let by_strategy = stats.by_strategy.into_iter().map(|s| StrategyTotals { strategy: s.strategy, totals: s.totals.into() }).collect();
        Self { totals: stats.totals.into(), by_strategy }
    }
}

/// Converts every row of a list.
pub(super) fn all<Row, View: From<Row>>(rows: Vec<Row>) -> Vec<View> {
    rows.into_iter().map(View::from).collect()
}
