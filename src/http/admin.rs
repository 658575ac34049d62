//! `/admin/*`: switch the cluster's strategy, reset an event, and look at
//! what happened (double bookings, stats, live replicas).
//!
//! Switching, resetting and deleting an event go through the switch barrier
//! ([`crate::cluster::barrier`]): no booking runs across them.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::unknown_event;
use crate::cluster::barrier::Report;
use crate::cluster::heartbeat::live_replicas;
use crate::domain::StrategyName;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::storage;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/strategy", get(strategy).post(set_strategy))
        .route("/admin/reset", post(reset))
        .route("/admin/double-bookings", get(double_bookings))
        .route("/admin/stats", get(stats))
        .route("/admin/cluster", get(cluster))
        .route("/admin/events", post(create_event))
        .route("/admin/events/{id}", delete(delete_event))
}

async fn strategy(State(state): State<AppState>) -> Json<Value> {
    let applied = state.active.current();
    let locking = &state.locking;
    Json(json!({
        "strategy": applied.name,
        "version": applied.version,
        "instance": state.instance_id,
        "hold_ms": locking.hold_ms,
        "lock_ttl_ms": locking.lock_ttl_ms,
        "lock_wait_ms": locking.lock_wait_ms,
    }))
}

#[derive(Deserialize)]
struct StrategyRequest {
    strategy: String,
}

/// Switches the whole cluster through the barrier; answers once every live
/// replica has applied the new strategy (or was left behind, and says so).
async fn set_strategy(State(state): State<AppState>, payload: Result<Json<StrategyRequest>, JsonRejection>) -> Result<Json<Value>> {
    let Json(request) = payload?;
    let name: StrategyName =
        request.strategy.trim().parse().map_err(|message: String| Error::bad_request(format!("strategy: {message}")))?;
    let report = state.barrier.switch(name).await?;
    let mut answer = barrier_answer(&report, &state.instance_id);
    answer["old_strategy"] = json!(report.old.name);
    answer["new_strategy"] = json!(report.new.name);
    answer["message"] = json!(switch_message(&report));
    Ok(Json(answer))
}

/// What every change through the barrier answers with.
fn barrier_answer(report: &Report, instance: &str) -> Value {
    json!({
        "version": report.new.version,
        "instance": instance,
        "switched": report.switched,
        "lagging": report.lagging,
        "pause": report.pause,
        "replicas": report.replicas,
        "took_ms": report.took_ms,
    })
}

fn switch_message(report: &Report) -> String {
    let mut message = format!(
        "{} -> {} (epoch {}) on {}; bookings paused p50 {} ms, p99 {} ms ({} waited)",
        report.old.name,
        report.new.name,
        report.new.version,
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

#[derive(Deserialize)]
struct EventQuery {
    event_id: Option<i64>,
}

/// Frees the event's seats, deletes its bookings and clears its locks, behind
/// the barrier: no booking is in flight while it runs, and one on a replica
/// that missed it cannot commit afterwards (the reset starts a new epoch).
async fn reset(State(state): State<AppState>, query: Result<Query<EventQuery>, QueryRejection>) -> Result<Json<Value>> {
    let Query(query) = query?;
    let event_id = query.event_id.unwrap_or(1);
    let report = change_event(&state, event_id, EventChange::Reset).await?;
    // Counted in the database: a load-test event can have 200 000 seats.
    let available = storage::available_seats(&state.db, Some(event_id)).await?.first().map_or(0, |(_, free)| *free);
    crate::metrics::available_seats(event_id, available);
    let mut answer = barrier_answer(&report, &state.instance_id);
    answer["status"] = json!("reset");
    answer["event_id"] = json!(event_id);
    answer["available_seats"] = json!(available);
    answer["message"] = json!(format!("Event {event_id}: every seat is free, its bookings and locks are gone"));
    Ok(Json(answer))
}

async fn double_bookings(State(state): State<AppState>, query: Result<Query<EventQuery>, QueryRejection>) -> Result<Json<Value>> {
    let Query(query) = query?;
    let found = storage::double_bookings(&state.db, query.event_id).await?;
    Ok(Json(json!({ "count": found.len(), "double_bookings": found })))
}

async fn stats(State(state): State<AppState>, query: Result<Query<EventQuery>, QueryRejection>) -> Result<Json<Value>> {
    let Query(query) = query?;
    let stats = storage::stats(&state.db, query.event_id).await?;
    Ok(Json(json!({
        "totals": stats.totals,
        "by_strategy": stats.by_strategy,
        "current_strategy": state.active.current().name,
        "instance": state.instance_id,
    })))
}

async fn cluster(State(state): State<AppState>) -> Result<Json<Value>> {
    let replicas = live_replicas(&state.redis, &state.keys, state.heartbeat_interval).await?;
    let stored = storage::epoch::load(&state.db).await?;
    Ok(Json(json!({
        "count": replicas.len(),
        "replicas": replicas,
        "strategy": stored,
        "served_by": state.instance_id,
    })))
}

/// The event the migrations create.
const SEED_EVENT: i64 = 1;

/// The largest event `POST /admin/events` creates.
const MAX_ROWS: i32 = 702; // A..Z, AA..ZZ
const MAX_SEATS_PER_ROW: i32 = 1000;
const MAX_SEATS: i32 = 200_000;

#[derive(Deserialize)]
struct NewEvent {
    name: String,
    #[serde(default = "default_venue")]
    venue: String,
    rows: i32,
    seats_per_row: i32,
}

fn default_venue() -> String {
    "Load Test Arena".to_owned()
}

/// Creates an event with as many seats as a load test needs.
async fn create_event(State(state): State<AppState>, payload: Result<Json<NewEvent>, JsonRejection>) -> Result<(StatusCode, Json<Value>)> {
    let Json(event) = payload?;
    let name = event.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Error::bad_request("name must be 1 to 200 characters, without control characters"));
    }
    let venue = event.venue.trim();
    if venue.chars().count() > 200 || venue.chars().any(char::is_control) {
        return Err(Error::bad_request("venue must be at most 200 characters, without control characters"));
    }
    if !(1..=MAX_ROWS).contains(&event.rows) {
        return Err(Error::bad_request(format!("rows must be from 1 to {MAX_ROWS}")));
    }
    if !(1..=MAX_SEATS_PER_ROW).contains(&event.seats_per_row) {
        return Err(Error::bad_request(format!("seats_per_row must be from 1 to {MAX_SEATS_PER_ROW}")));
    }
    if event.rows * event.seats_per_row > MAX_SEATS {
        return Err(Error::bad_request(format!("rows × seats_per_row must be at most {MAX_SEATS} seats")));
    }
    let created = storage::create_event(&state.db, name, venue, event.rows, event.seats_per_row).await?;
    Ok((StatusCode::CREATED, Json(json!({ "event": created }))))
}

async fn delete_event(State(state): State<AppState>, id: Result<Path<i64>, PathRejection>) -> Result<Json<Value>> {
    let Path(event_id) = id?;
    if event_id == SEED_EVENT {
        return Err(Error::bad_request("event 1 is the seed event the exercises use; reset it instead"));
    }
    change_event(&state, event_id, EventChange::Delete).await?;
    Ok(Json(json!({ "status": "deleted", "event_id": event_id })))
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
                state.strategies.clear_locks(event_id).await?;
                match change {
                    EventChange::Reset => storage::reset_event(tx, event_id).await?,
                    EventChange::Delete => storage::delete_event(tx, event_id).await?,
                };
                Ok(())
            },
        )
        .await
}
