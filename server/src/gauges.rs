//! Gauges too costly to compute per request, refreshed on a timer: how many
//! Redlock nodes answer. (Seats available per event are read at scrape
//! time instead, in `http::metrics`, so a deleted event's series goes with it.)

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;

const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Refreshes the gauges until `cancel` fires.
pub async fn run(state: AppState, cancel: CancellationToken) {
    loop {
        refresh(&state).await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
        }
    }
}

async fn refresh(state: &AppState) {
    crate::metrics::redlock_nodes_reachable(state.bookings.strategies().redlock_nodes_reachable().await);
}
