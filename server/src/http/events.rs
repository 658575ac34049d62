//! `GET /events/{id}` and `GET /events/{id}/seats`.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{Error, ErrorBody, Result};
use crate::state::AppState;
use super::rows::{self, Event, Holder, Seat};
use crate::storage;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(event)).routes(routes!(seats))
}

/// An event's id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct EventPath {
    /// The event's id; the seeded event is 1.
    #[param(example = 1)]
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
    crate::metrics::available_seats(event_id, available as i64);
    let holders = rows::all(storage::holders(&state.db, event_id).await?);
    Ok(Json(EventAnswer { event, seats: SeatSummary { total: seats.len(), available, booked, held, details: seats }, holders }))
}

#[derive(Deserialize, IntoParams)]
struct SeatsQuery {
    /// Only the seats nobody holds.
    #[serde(default)]
    available_only: bool,
}

#[derive(Serialize, ToSchema)]
struct SeatList {
    event_id: i64,
    count: usize,
    seats: Vec<Seat>,
}

/// An event's seats, optionally only the free ones.
#[utoipa::path(
    get, path = "/events/{id}/seats", tag = "events", operation_id = "listSeats",
    params(EventPath, SeatsQuery),
    responses(
        (status = OK, description = "The seats", body = SeatList),
        (status = BAD_REQUEST, description = "The id is not an integer, or `available_only` not a boolean", body = ErrorBody),
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
    storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?;
    let seats = rows::all(storage::seats(&state.db, event_id, query.available_only).await?);
    Ok(Json(SeatList { event_id, count: seats.len(), seats }))
}

pub(super) fn unknown_event(event_id: i64) -> Error {
    Error::not_found(format!("event {event_id} does not exist"))
}
