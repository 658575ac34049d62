//! `GET /events/{id}`, `GET /events/{id}/seats` (a page at a time) and
//! `GET /events/{id}/seats/{seat_number}`.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{Error, ErrorBody, Result};
use super::integer;
use crate::state::AppState;
use super::rows::{self, Event, Holder, Seat};
use crate::domain::SeatNumber;
use crate::storage;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(event)).routes(routes!(seats)).routes(routes!(seat))
}

/// An event's id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct EventPath {
    /// The event's id; the seeded event is 1.
    #[param(example = 1)]
    #[serde(deserialize_with = "integer::text")]
    pub id: i64,
}

/// An event, every one of its seats, and the bookings that hold them.
#[derive(Serialize, ToSchema)]
struct EventAnswer {
    event: Event,
    seats: SeatSummary,
    /// Every booking that holds a seat, oldest first: a double-booked seat
    /// appears once per holder.
    holders: Vec<Holder>,
}

#[derive(Serialize, ToSchema)]
struct SeatSummary {
    total: usize,
    available: usize,
    booked: usize,
    /// Not booked, but kept by a live hold.
    held: usize,
    details: Vec<Seat>,
}

/// An event with its seats and how many are booked.
#[utoipa::path(
    get, path = "/events/{id}", tag = "events", operation_id = "getEvent",
    params(EventPath),
    responses(
        (status = OK, description = "The event and its seats", body = EventAnswer),
        (status = BAD_REQUEST, description = "The id is not an integer", body = ErrorBody),
        (status = NOT_FOUND, description = "No event has this id", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn event(State(state): State<AppState>, id: Result<Path<EventPath>, PathRejection>) -> Result<Json<EventAnswer>> {
    let Path(EventPath { id: event_id }) = id?;
    let event = storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?.into();
    let seats: Vec<Seat> = rows::all(storage::seats(&state.db, event_id, false).await?);
    let booked = seats.iter().filter(|seat| seat.is_booked).count();
    let held = seats.iter().filter(|seat| !seat.is_booked && seat.is_held).count();
    let available = seats.len() - booked - held;
    let holders = rows::all(storage::holders(&state.db, event_id).await?);
    Ok(Json(EventAnswer { event, seats: SeatSummary { total: seats.len(), available, booked, held, details: seats }, holders }))
}

/// How many seats a page of `GET /events/{id}/seats` has unless `limit` says.
const DEFAULT_PAGE: i64 = 1000;
/// The largest page a client may ask for.
const MAX_PAGE: i64 = 10_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SeatsQuery {
    /// Only the seats nobody has booked or holds.
    #[serde(default)]
    #[param(required = false)]
    available_only: bool,
    /// Seats per page: 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10000, example = 100)]
    #[serde(default, deserialize_with = "integer::optional_text")]
    limit: Option<i64>,
    /// Where the page starts: the `next_cursor` of the page before (the seat
    /// number it ended with). Absent: the first page.
    #[param(pattern = r"^[A-Za-z]{1,4}[0-9]{1,4}$", example = "J10")]
    cursor: Option<String>,
}

/// One page of an event's seats, in seat-map order (row, then seat number).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"event_id": 1, "count": 0, "limit": 100, "seats": [], "next_cursor": null}))]
struct SeatList {
    event_id: i64,
    /// Seats on this page.
    count: usize,
    /// The page size asked for (or the default).
    limit: i64,
    seats: Vec<Seat>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// An event's seats, a page at a time, optionally only the free ones.
#[utoipa::path(
    get, path = "/events/{id}/seats", tag = "events", operation_id = "listSeats",
    params(EventPath, SeatsQuery),
    responses(
        (status = OK, description = "A page of seats; `next_cursor` fetches the next", body = SeatList),
        (status = BAD_REQUEST, description = "The id is not an integer, `available_only` not a boolean, `limit` out of range \
            or `cursor` not a seat number", body = ErrorBody),
        (status = NOT_FOUND, description = "No event has this id", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn seats(
    State(state): State<AppState>,
    id: Result<Path<EventPath>, PathRejection>,
    query: Result<Query<SeatsQuery>, QueryRejection>,
) -> Result<Json<SeatList>> {
    let Path(EventPath { id: event_id }) = id?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::bad_request(format!("limit must be from 1 to {MAX_PAGE}, got {limit}")));
    }
    let cursor = query.cursor.as_deref().map(SeatNumber::parse).transpose().map_err(|message| Error::bad_request(format!("cursor: {message}")))?;
    storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?;
    let page = storage::seats_page(&state.db, event_id, query.available_only, cursor.as_ref().map(SeatNumber::as_str), limit).await?;
    let next_cursor = (page.len() as i64 == limit).then(|| page.last().map(|seat| seat.seat_number.clone())).flatten();
    let seats: Vec<Seat> = rows::all(page);
    Ok(Json(SeatList { event_id, count: seats.len(), limit, seats, next_cursor }))
}

/// A seat in a path: its event and its number.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct SeatPath {
    /// The event's id; the seeded event is 1.
    #[param(example = 1)]
    #[serde(deserialize_with = "integer::text")]
    id: i64,
    /// The seat's number within its event.
    #[param(pattern = r"^[A-Za-z]{1,4}[0-9]{1,4}$", example = "A1")]
    seat_number: String,
}

/// One seat: whether it is booked or held, by whom, and its version and
/// fencing token.
#[utoipa::path(
    get, path = "/events/{id}/seats/{seat_number}", tag = "events", operation_id = "getSeat",
    params(SeatPath),
    responses(
        (status = OK, description = "The seat", body = Seat),
        (status = BAD_REQUEST, description = "The id is not an integer, or the seat number not letters then digits", body = ErrorBody),
        (status = NOT_FOUND, description = "No event has this id, or it has no such seat", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn seat(State(state): State<AppState>, path: Result<Path<SeatPath>, PathRejection>) -> Result<Json<Seat>> {
    let Path(SeatPath { id: event_id, seat_number }) = path?;
    let seat_number = SeatNumber::parse(&seat_number).map_err(Error::BadRequest)?;
    match storage::seat_by_number(&state.db, event_id, seat_number.as_str()).await? {
        Some(seat) => Ok(Json(seat.into())),
        None if storage::event(&state.db, event_id).await?.is_none() => Err(unknown_event(event_id)),
        None => Err(Error::not_found(format!("event {event_id} has no seat {}", seat_number.as_str()))),
    }
}

pub(super) fn unknown_event(event_id: i64) -> Error {
    Error::not_found(format!("event {event_id} does not exist"))
}
