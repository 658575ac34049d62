//! `/admin/*`: switch the cluster's strategy, reset an event, and look at
//! what happened (double bookings, stats, live replicas).
//!
//! Switching, resetting and deleting an event go through the switch barrier
//! ([`crate::cluster::barrier`]): no booking runs across them. With
//! `ADMIN_TOKEN` set, every route here wants it ([`super::admin_token`]).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderName, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::events::{EventPath, unknown_event};
use crate::cluster::barrier::{PauseSummary, ReplicaPause, Report};
use crate::cluster::heartbeat::{Replica, live_replicas};
use crate::domain::{Applied, StrategyName};
use super::error::{Error, ErrorBody, ErrorCode, Result};
use super::integer;
use crate::live::Change;
use crate::state::AppState;
use super::rows::{self, DoubleBooking, Event, Stats};
use crate::storage;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(strategy, set_strategy))
        .routes(routes!(reset))
        .routes(routes!(double_bookings))
        .routes(routes!(stats))
        .routes(routes!(cluster))
        .routes(routes!(create_event))
        .routes(routes!(delete_event))
}

/// The strategy this replica applies, and the locking settings it runs with.
#[derive(Serialize, ToSchema)]
struct StrategyAnswer {
    strategy: StrategyName,
    /// The epoch this replica applies.
    version: u64,
    instance: String,
    /// How long a booking holds its lock (or row) before writing, widening the race on purpose.
    hold_ms: u64,
    /// Time-to-live of the Redis locks.
    lock_ttl_ms: u64,
    /// The `etcd` lock's lease: `lock_ttl_ms` in whole seconds, at least
    /// etcd's minimum of 2 s.
    etcd_lease_ms: u64,
    lock_wait_ms: u64,
}

/// The strategy this replica applies.
#[utoipa::path(
    get, path = "/admin/strategy", tag = "admin", operation_id = "getStrategy",
    responses((status = OK, description = "This replica's strategy and locking settings", body = StrategyAnswer)),
)]
async fn strategy(State(state): State<AppState>) -> Json<StrategyAnswer> {
    let applied = state.active.current();
    let locking = &state.locking;
    Json(StrategyAnswer {
        strategy: applied.name,
        version: applied.epoch,
        instance: state.instance_id.clone(),
        hold_ms: locking.hold_ms,
        lock_ttl_ms: locking.lock_ttl_ms,
        etcd_lease_ms: state.bookings.strategies().etcd_lease_ms(),
        lock_wait_ms: locking.lock_wait_ms,
    })
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"strategy": "pessimistic"}))]
struct StrategyRequest {
    /// The strategy every replica switches to.
    #[schema(value_type = StrategyName)]
    strategy: String,
}

/// What every change through the barrier reports.
#[derive(Serialize, ToSchema)]
struct BarrierAnswer {
    /// The epoch the change started.
    version: u64,
    /// The replica that coordinated the change.
    instance: String,
    /// Replicas that drained their bookings and applied the change.
    switched: Vec<String>,
    /// Live replicas that did not acknowledge in time: the change went ahead
    /// without them, and their bookings are refused until they catch up.
    lagging: Vec<String>,
    pause: PauseSummary,
    replicas: Vec<ReplicaPause>,
    took_ms: f64,
}

impl BarrierAnswer {
    fn new(report: Report, instance: &str) -> Self {
        Self {
            version: report.new.epoch,
            instance: instance.to_owned(),
            switched: report.switched,
            lagging: report.lagging,
            pause: report.pause,
            replicas: report.replicas,
            took_ms: report.took_ms,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct SwitchAnswer {
    old_strategy: StrategyName,
    new_strategy: StrategyName,
    message: String,
    #[serde(flatten)]
    barrier: BarrierAnswer,
}

/// Switches every replica's strategy together, through the barrier: answers
/// once every live replica has applied it (or was left behind, and says so).
#[utoipa::path(
    post, path = "/admin/strategy", tag = "admin", operation_id = "setStrategy",
    request_body = StrategyRequest,
    responses(
        (status = OK, description = "Switched; `lagging` names replicas left behind", body = SwitchAnswer),
        (status = BAD_REQUEST, description = "Unknown strategy; the message lists the valid ones", body = ErrorBody),
        (status = CONFLICT, description = "Another switch or reset is in progress", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or Redis is down, or a booking held the epoch row too long; \
            the old strategy stays everywhere", body = ErrorBody),
    ),
)]
async fn set_strategy(State(state): State<AppState>, payload: Result<Json<StrategyRequest>, JsonRejection>) -> Result<Json<SwitchAnswer>> {
    let Json(request) = payload?;
    let name: StrategyName =
        request.strategy.trim().parse().map_err(|message: String| Error::bad_request(format!("strategy: {message}")))?;
    let report = state.barrier.switch(name).await?;
    Ok(Json(SwitchAnswer {
        old_strategy: report.old.name,
        new_strategy: report.new.name,
        message: switch_message(&report),
        barrier: BarrierAnswer::new(report, &state.instance_id),
    }))
}

fn switch_message(report: &Report) -> String {
    let mut message = format!(
        "{} -> {} (epoch {}) on {}; bookings paused p50 {} ms, p99 {} ms ({} waited)",
        report.old.name,
        report.new.name,
        report.new.epoch,
        report.switched.join(", "),
        report.pause.p50_ms,
        report.pause.p99_ms,
        report.pause.paused_requests
    );
    if !report.lagging.is_empty() {
        message.push_str(&format!(
            ". {} did not acknowledge in time: the switch went ahead without them, and their bookings are refused \
             (stale_strategy) until they catch up",
            report.lagging.join(", ")
        ));
    }
    message
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventQuery {
    /// The event (every event when absent; `reset` defaults to 1).
    #[param(minimum = 1, example = 1)]
    #[serde(default, deserialize_with = "integer::optional_text")]
    event_id: Option<i64>,
}

impl EventQuery {
    /// The event asked for, if any; 400 for an id that cannot be one.
    fn event_id(&self) -> Result<Option<i64>> {
        match self.event_id {
            Some(id) if id < 1 => Err(Error::bad_request(format!("event_id must be a positive integer, got {id}"))),
            other => Ok(other),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ResetAnswer {
    status: ResetStatus,
    event_id: i64,
    available_seats: i64,
    message: String,
    #[serde(flatten)]
    barrier: BarrierAnswer,
}

/// Always `reset`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum ResetStatus {
    Reset,
}

/// Frees the event's seats, deletes its bookings and clears its locks, behind
/// the barrier: no booking is in flight while it runs, and one on a replica
/// that missed it cannot commit afterwards (the reset starts a new epoch).
#[utoipa::path(
    post, path = "/admin/reset", tag = "admin", operation_id = "resetEvent",
    params(EventQuery),
    responses(
        (status = OK, description = "Every seat of the event is free", body = ResetAnswer),
        (status = BAD_REQUEST, description = "`event_id` is not an integer", body = ErrorBody),
        (status = NOT_FOUND, description = "No event has this id", body = ErrorBody),
        (status = CONFLICT, description = "A switch or another reset is in progress", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or Redis is down", body = ErrorBody),
    ),
)]
async fn reset(State(state): State<AppState>, query: Result<Query<EventQuery>, QueryRejection>) -> Result<Json<ResetAnswer>> {
    let Query(query) = query?;
    let event_id = query.event_id()?.unwrap_or(1);
    let report = change_event(&state, event_id, EventChange::Reset).await?;
    // Counted in the database: a load-test event can have 200 000 seats.
    let available = storage::available_seats(&state.db, Some(event_id)).await?.first().map_or(0, |(_, free)| *free);
    Ok(Json(ResetAnswer {
        status: ResetStatus::Reset,
        event_id,
        available_seats: available,
        message: format!("Event {event_id}: every seat is free, its bookings and locks are gone"),
        barrier: BarrierAnswer::new(report, &state.instance_id),
    }))
}

#[derive(Serialize, ToSchema)]
struct DoubleBookings {
    count: usize,
    double_bookings: Vec<DoubleBooking>,
}

/// Seats that more than one booking holds: the lesson's evidence.
#[utoipa::path(
    get, path = "/admin/double-bookings", tag = "admin", operation_id = "doubleBookings",
    params(EventQuery),
    responses(
        (status = OK, description = "Every double-booked seat with its holders", body = DoubleBookings),
        (status = BAD_REQUEST, description = "`event_id` is not an integer", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn double_bookings(State(state): State<AppState>, query: Result<Query<EventQuery>, QueryRejection>) -> Result<Json<DoubleBookings>> {
    let Query(query) = query?;
    let found = storage::double_bookings(&state.db, query.event_id()?).await?;
    Ok(Json(DoubleBookings { count: found.len(), double_bookings: rows::all(found) }))
}

#[derive(Serialize, ToSchema)]
struct StatsAnswer {
    #[serde(flatten)]
    stats: Stats,
    current_strategy: StrategyName,
    instance: String,
}

/// Booking attempts by outcome and reason, in all and per strategy.
#[utoipa::path(
    get, path = "/admin/stats", tag = "admin", operation_id = "stats",
    params(EventQuery),
    responses(
        (status = OK, description = "Counts of attempts", body = StatsAnswer),
        (status = BAD_REQUEST, description = "`event_id` is not an integer", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn stats(State(state): State<AppState>, query: Result<Query<EventQuery>, QueryRejection>) -> Result<Json<StatsAnswer>> {
    let Query(query) = query?;
    let stats = storage::stats(&state.db, query.event_id()?).await?;
    Ok(Json(StatsAnswer { stats: stats.into(), current_strategy: state.active.current().name, instance: state.instance_id.clone() }))
}

#[derive(Serialize, ToSchema)]
struct ClusterAnswer {
    count: usize,
    /// The replicas whose heartbeat is fresh, with the strategy each applies.
    replicas: Vec<Replica>,
    /// The cluster's strategy and epoch, as Postgres holds them.
    strategy: ClusterStrategy,
    served_by: String,
}

/// The cluster's strategy and the epoch it was set in.
///
/// The epoch (`version`) only ever grows: every strategy switch and every
/// reset starts a new one. A booking remembers the epoch it started in, and
/// its write commits only while that epoch is still the cluster's, so no
/// booking can straddle a switch.
#[derive(Serialize, ToSchema)]
#[schema(as = Applied)]
struct ClusterStrategy {
    name: StrategyName,
    /// The epoch: every switch and every reset starts a new one.
    #[schema(minimum = 1)]
    version: u64,
}

impl From<Applied> for ClusterStrategy {
    fn from(applied: Applied) -> Self {
        Self { name: applied.name, version: applied.epoch }
    }
}

/// The live replicas and the strategy each applies.
#[utoipa::path(
    get, path = "/admin/cluster", tag = "admin", operation_id = "cluster",
    responses(
        (status = OK, description = "The cluster as Redis heartbeats and Postgres see it", body = ClusterAnswer),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or Redis is down", body = ErrorBody),
    ),
)]
async fn cluster(State(state): State<AppState>) -> Result<Json<ClusterAnswer>> {
    let replicas = live_replicas(&state.redis, &state.keys, state.heartbeat_interval).await?;
    let stored = storage::epoch::load(&state.db).await?;
    Ok(Json(ClusterAnswer { count: replicas.len(), replicas, strategy: stored.into(), served_by: state.instance_id.clone() }))
}

/// The event the migrations create.
const SEED_EVENT: i64 = 1;

/// The largest event `POST /admin/events` creates.
// 200 rows (A..Z, AA..GR) of at most 1000 seats: the largest event is
// 200,000 seats, a limit the document's per-field maxima state exactly.
const MAX_ROWS: i32 = 200;
const MAX_SEATS_PER_ROW: i32 = 1000;

/// An event to create, with `rows` × `seats_per_row` free seats.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Load test", "rows": 10, "seats_per_row": 20}))]
struct NewEvent {
    /// 1 to 200 characters, not blank, no control characters (surrounding
    /// whitespace is trimmed).
    #[schema(min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$", example = "Load test")]
    name: String,
    /// At most 200 characters, no control characters.
    #[serde(default = "default_venue")]
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$", default = "Load Test Arena")]
    venue: String,
    /// Rows are lettered A..Z, then AA, AB, ... (the 200th is GR).
    #[schema(minimum = 1, maximum = 200, example = 10)]
    #[serde(deserialize_with = "integer::exact")]
    rows: i32,
    #[schema(minimum = 1, maximum = 1000, example = 20)]
    #[serde(deserialize_with = "integer::exact")]
    seats_per_row: i32,
}

#[derive(Serialize, ToSchema)]
struct Created {
    event: Event,
}

#[derive(Serialize, ToSchema)]
struct Deleted {
    status: DeletedStatus,
    event_id: i64,
}

/// Always `deleted`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum DeletedStatus {
    Deleted,
}

fn default_venue() -> String {
    "Load Test Arena".to_owned()
}

/// Creates an event with as many seats as a load test needs (at most
/// 200 000: rows × seats_per_row).
#[utoipa::path(
    post, path = "/admin/events", tag = "admin", operation_id = "createEvent",
    request_body = NewEvent,
    responses(
        (status = CREATED, description = "The event, with every seat free", body = Created,
            headers(("Location" = String, description = "The event: `/events/{id}`"))),
        (status = BAD_REQUEST, description = "A field is out of range; the message names it", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn create_event(
    State(state): State<AppState>,
    payload: Result<Json<NewEvent>, JsonRejection>,
) -> Result<(StatusCode, [(HeaderName, String); 1], Json<Created>)> {
    let Json(event) = payload?;
    // Lengths count the characters as sent, as the document's maxLength does.
    let name = event.name.trim();
    if name.is_empty() || event.name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::bad_request("name must be 1 to 200 characters, not blank, without control characters"));
    }
    let venue = event.venue.trim();
    if event.venue.chars().count() > 200 || venue.chars().any(char::is_control) {
        return Err(Error::bad_request("venue must be at most 200 characters, without control characters"));
    }
    if !(1..=MAX_ROWS).contains(&event.rows) {
        return Err(Error::bad_request(format!("rows must be from 1 to {MAX_ROWS}")));
    }
    if !(1..=MAX_SEATS_PER_ROW).contains(&event.seats_per_row) {
        return Err(Error::bad_request(format!("seats_per_row must be from 1 to {MAX_SEATS_PER_ROW}")));
    }
    let created = storage::create_event(&state.db, name, venue, event.rows, event.seats_per_row).await?;
    let location = [(LOCATION, format!("/events/{}", created.id))];
    Ok((StatusCode::CREATED, location, Json(Created { event: created.into() })))
}

/// Deletes an event with its seats, bookings and locks, behind the barrier.
#[utoipa::path(
    delete, path = "/admin/events/{id}", tag = "admin", operation_id = "deleteEvent",
    params(EventPath),
    responses(
        (status = OK, description = "The event is gone", body = Deleted),
        (status = BAD_REQUEST, description = "The id is not an integer", body = ErrorBody),
        (status = NOT_FOUND, description = "No event has this id", body = ErrorBody),
        (status = CONFLICT, description = "The event is the seed event 1 (`seed_event`: reset it instead), or a switch or reset \
            is in progress (`switch_in_progress`)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or Redis is down", body = ErrorBody),
    ),
)]
async fn delete_event(State(state): State<AppState>, id: Result<Path<EventPath>, PathRejection>) -> Result<Json<Deleted>> {
    let Path(EventPath { id: event_id }) = id?;
    if event_id == SEED_EVENT {
        return Err(Error::Conflict(ErrorCode::SeedEvent, "event 1 is the seed event the exercises use; reset it instead".into()));
    }
    change_event(&state, event_id, EventChange::Delete).await?;
    Ok(Json(Deleted { status: DeletedStatus::Deleted, event_id }))
}

enum EventChange {
    Reset,
    Delete,
}

/// Resets or deletes an event behind the barrier: its locks are cleared and
/// its rows changed while no booking is in flight, and a booking on a replica
/// that missed the barrier cannot write to it afterwards (a new epoch starts).
async fn change_event(state: &AppState, event_id: i64, change: EventChange) -> Result<Report> {
    storage::event(&state.db, event_id).await?.ok_or_else(|| unknown_event(event_id))?;
    state
        .barrier
        .change(
            |current| current.name,
            async |tx: &mut sqlx::PgConnection| {
                state.bookings.strategies().clear_locks(event_id).await?;
                match change {
                    EventChange::Reset => storage::reset_event(tx, event_id).await?,
                    EventChange::Delete => storage::delete_event(tx, event_id).await?,
                };
                Ok(())
            },
        )
        .await
        .inspect(|_| state.feed.publish(Change::Reset { event_id }))
        .map_err(Error::from)
}
