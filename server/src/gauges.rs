//! Gauges too costly to compute per request, refreshed on a timer: seats
//! still available per event, and how many Redlock nodes answer.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::AppState;
use crate::storage;

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
    match storage::available_seats(&state.db, None).await {
        Ok(events) => {
            for (event_id, available) in events {
                crate::metrics::available_seats(event_id, available);
            }
        }
        Err(error) => tracing::debug!(%error, "could not count available seats"),
    }
    crate::metrics::redlock_nodes_reachable(state.bookings.strategies().redlock_nodes_reachable().await);
}
