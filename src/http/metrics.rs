//! `GET /metrics`: this replica's Prometheus exposition.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Renders every series, after refreshing the gauges that are cheap to read
/// at scrape time (pool usage, the mutex map's size).
async fn metrics(State(state): State<AppState>) -> String {
    let size = state.db.size() as usize;
    let idle = state.db.num_idle().min(size);
    crate::metrics::db_pool(size - idle, idle);
    crate::metrics::mutex_map_size(state.strategies.tracked_mutexes());
    state.metrics.render()
}
