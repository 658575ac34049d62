//! `GET /metrics`: this replica's Prometheus exposition.
//!
//! Most series live in the recorder (`crate::metrics`). Two kinds are read
//! at scrape time instead: the process's CPU and memory, and the seats
//! available per event, counted in Postgres. A gauge per event in the
//! recorder would outlive its event (the recorder cannot forget one
//! series); read at scrape time, a deleted event's series is gone from the
//! next scrape on.

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::storage;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// This replica's metrics in the Prometheus text format (bookings by
/// strategy and outcome, latencies, switch pauses, pool usage).
#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = OK, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain")),
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Gauges that are cheap to read at scrape time are refreshed first.
    let size = state.db.size() as usize;
    let idle = state.db.num_idle().min(size);
    crate::metrics::db_pool("other", size - idle, idle);
    let bookings = state.booking_db.status();
    crate::metrics::db_pool("bookings", bookings.size - bookings.available.min(bookings.size), bookings.available);
    crate::metrics::mutex_map_size(state.bookings.strategies().tracked_mutexes());
    crate::metrics::collect_process();
    let mut text = state.metrics.render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&available_seats(&state).await);
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// `available_seats{event_id}`: seats neither booked nor held, per event that
/// exists now. Without Postgres, the family is left out of this scrape (a
/// gap, not a stale number); `/ready` says why.
async fn available_seats(state: &AppState) -> String {
    // A scrape must not wait out the pool's acquire timeout while Postgres is down.
    let events = match tokio::time::timeout(Duration::from_secs(1), storage::available_seats(&state.db, None)).await {
        Ok(Ok(events)) => events,
        Ok(Err(error)) => {
            tracing::debug!(%error, "could not count available seats for /metrics");
            return String::new();
        }
        Err(_) => return String::new(),
    };
    let mut family = String::from(
        "# HELP available_seats Seats neither booked nor held, by event (counted in Postgres at scrape time)\n# TYPE available_seats gauge\n",
    );
    for (event_id, available) in events {
        family.push_str(&format!("available_seats{{event_id=\"{event_id}\",instance=\"{}\"}} {available}\n", label_value(&state.instance_id)));
    }
    family
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
