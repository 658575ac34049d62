//! `GET /events/{id}` and `GET /events/{id}/seats`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::storage;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/events/{id}", get(event)).route("/events/{id}/seats", get(seats))
}

async fn event(State(state): State<AppState>, id: Result<Path<i64>, PathRejection>) -> Result<Json<Value>> {
    let Path(event_id) = id?;
    let event = storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?;
    let seats = storage::seats(&state.db, event_id, false).await?;
    let booked = seats.iter().filter(|seat| seat.is_booked).count();
    let available = seats.len() - booked;
    crate::metrics::available_seats(event_id, available as i64);
    Ok(Json(json!({
        "event": event,
        "seats": { "total": seats.len(), "available": available, "booked": booked, "details": seats },
    })))
}

#[derive(Deserialize)]
struct SeatsQuery {
    #[serde(default)]
    available_only: bool,
}

async fn seats(
    State(state): State<AppState>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<SeatsQuery>, QueryRejection>,
) -> Result<Json<Value>> {
    let Path(event_id) = id?;
    let Query(query) = query?;
    storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?;
    let seats = storage::seats(&state.db, event_id, query.available_only).await?;
    Ok(Json(json!({ "event_id": event_id, "count": seats.len(), "seats": seats })))
}

pub(super) fn unknown_event(event_id: i64) -> Error {
    Error::not_found(format!("event {event_id} does not exist"))
}
