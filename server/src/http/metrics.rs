//! `GET /metrics`: this replica's Prometheus exposition.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

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
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
