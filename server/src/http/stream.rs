//! `GET /events/{id}/stream`: the seat map's Server-Sent Events.
//!
//! A stream opens with `hello` (this replica and its strategy), then sends
//! `seat` for every booking of the event that any replica commits, `hold`
//! for every hold taken and `freed` for every hold released or expired, `reset`
//! when the event is reset or deleted, `strategy` when this replica applies
//! a new strategy, and `resync` when it may have missed changes (the stream
//! fell behind, or the replica's Redis subscription was lost): the page then
//! reloads the event from `GET /events/{id}`. A comment every 15 s keeps
//! idle connections (and nginx's read timeout) alive.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::events::{EventPath, unknown_event};
use super::error::{Error, ErrorBody, Result};
use crate::live::Change;
use crate::live::feed::Update;
use crate::state::AppState;
use crate::storage;

/// Shorter than nginx's `proxy_read_timeout` for the stream (see nginx/).
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// Live changes to an event's seats, as Server-Sent Events. The stream does
/// not end until the client or the replica goes away.
#[utoipa::path(
    get, path = "/events/{id}/stream", tag = "events", operation_id = "streamEvent",
    params(EventPath),
    responses(
        (status = OK, description = "Server-Sent Events: `hello`, then `seat`, `hold`, `freed`, `reset`, `strategy` and `resync` \
            as they happen; the schema describes one event", body = StreamEvent, content_type = "text/event-stream"),
        (status = BAD_REQUEST, description = "The id is not an integer", body = ErrorBody),
        (status = NOT_FOUND, description = "No event has this id", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "This replica already serves MAX_STREAMS streams, or Postgres is down", body = ErrorBody),
    ),
)]
async fn stream(
    State(state): State<AppState>,
    id: Result<Path<EventPath>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Path(EventPath { id: event_id }) = id?;
    storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?;
    let (updates, place) = state.feed.subscribe().ok_or_else(|| Error::Unavailable {
        what: "the seat stream",
        detail: format!("this replica already serves {} streams (MAX_STREAMS); try another replica or later", state.feed.max_streams()),
    })?;
    let place = Place::taken(place);

    let applied = state.active.current();
    let hello = event(
        Kind::Hello,
        json!({ "instance": state.instance_id, "event_id": event_id, "strategy": applied.name, "version": applied.epoch }),
    );
    let instance = state.instance_id.clone();
    let seats = BroadcastStream::new(updates).filter_map(move |update| {
        std::future::ready(match update {
            Ok(Update::Change(change)) if change.event_id() == event_id => Some(match &*change {
                Change::Booked { .. } => event(Kind::Seat, &*change),
                Change::Held { .. } => event(Kind::Hold, &*change),
                Change::Freed { .. } => event(Kind::Freed, &*change),
                Change::Reset { .. } => event(Kind::Reset, &*change),
            }),
            Ok(Update::Change(_)) => None,
            Ok(Update::Resync) => Some(event(Kind::Resync, json!({ "reason": "this replica resubscribed to the seat feed" }))),
            Err(_lagged) => Some(event(Kind::Resync, json!({ "reason": "this stream fell behind and lost changes" }))),
        })
    });
    let strategies = WatchStream::from_changes(state.active.subscribe()).map(move |applied| {
        event(Kind::Strategy, json!({ "instance": instance, "strategy": applied.name, "version": applied.epoch }))
    });
    let events = stream::once(std::future::ready(hello))
        .chain(stream::select(seats, strategies))
        .take_until(state.feed.shutdown.clone().cancelled_owned())
        .map(move |event| {
            let _held = &place;
            Ok(event)
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

/// A stream's place among this replica's MAX_STREAMS, held (and counted in
/// the `seat_streams` gauge) for as long as the stream lives, however it ends.
struct Place {
    _permit: OwnedSemaphorePermit,
}

impl Place {
    fn taken(permit: OwnedSemaphorePermit) -> Self {
        crate::metrics::seat_streams(1.0);
        Self { _permit: permit }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        crate::metrics::seat_streams(-1.0);
    }
}

fn event(kind: Kind, data: impl serde::Serialize) -> Event {
    let name = kind.as_str();
    Event::default().event(name).json_data(data).unwrap_or_else(|_| Event::default().event(name))
}

/// One event of the stream as an SSE client reads it: its name, and its
/// JSON payload as the `data` line.
#[derive(ToSchema)]
#[allow(dead_code)] // The document's description of what `event` writes.
struct StreamEvent {
    event: Kind,
    /// A JSON object: `hello` `{instance, event_id, strategy, version}`; `seat`
    /// `{kind, event_id, seat_number, customer_id, instance, status, holders,
    /// booking_id}`; `hold` and `freed` the hold and its seat; `reset`
    /// `{event_id}`; `strategy` `{instance, strategy, version}`; `resync`
    /// `{reason}`.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The name of a stream event.
#[derive(Clone, Copy, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum Kind {
    /// First, once: this replica and its strategy.
    Hello,
    /// A booking committed on any replica.
    Seat,
    /// A hold taken.
    Hold,
    /// A hold released or expired.
    Freed,
    /// The event was reset or deleted.
    Reset,
    /// This replica applied a new strategy.
    Strategy,
    /// Changes may have been missed: reload the event.
    Resync,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Seat => "seat",
            Self::Hold => "hold",
            Self::Freed => "freed",
            Self::Reset => "reset",
            Self::Strategy => "strategy",
            Self::Resync => "resync",
        }
    }
}
