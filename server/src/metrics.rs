//! Prometheus metrics: names, labels and the recorder.
//!
//! Every series carries an `instance` label equal to the replica's
//! `X-Instance-Id`, so dashboards can split any panel per replica. The
//! recorder is process-wide: one process serves one replica.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::domain::{BookingStatus, Refusal, StrategyName};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets from 1 ms to 10 s: wide enough for a 50 ms hold behind a
/// queue of waiters.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide recorder (once) and returns its handle.
pub fn install(instance_id: &str) -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .add_global_label("instance", instance_id)
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may miss series");
            }
            describe();
            register_zeroes();
            handle
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const FOLD_EVERY: Duration = Duration::from_secs(1);

/// Folds the histograms' new samples into their buckets, once a second,
/// until `cancel` fires. The recorder keeps every sample until it is folded,
/// which otherwise happens only when `/metrics` is scraped: a replica that
/// nobody scrapes (no Prometheus running) would grow by some 70 bytes per
/// booking, without bound.
pub async fn fold_histograms(handle: PrometheusHandle, cancel: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(FOLD_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("bookings_total", "Booking attempts by strategy and status");
    describe_counter!("booking_failures_total", "Refused booking attempts by strategy and reason");
    describe_counter!("double_bookings_detected_total", "Bookings that found the seat already held by another booking");
    describe_counter!("lock_contentions_total", "Lock acquisitions that found the lock held by someone else");
    describe_counter!("optimistic_retries_total", "Optimistic compare-and-set conflicts that were retried");
    describe_counter!("fencing_token_rejections_total", "Seat writes refused because a newer fencing token had reached the seat");
    describe_histogram!("booking_duration_seconds", "Time to handle one booking, by strategy");
    describe_histogram!("lock_acquire_seconds", "Time spent waiting for a lock, by strategy");
    describe_histogram!("lock_hold_seconds", "Time a lock was held, by strategy");
    describe_gauge!("redlock_nodes_reachable", "Redlock nodes that answered the last probe");
    describe_gauge!("current_locking_strategy", "1 for the strategy this replica applies, 0 for the others");
    describe_counter!("http_requests_total", "HTTP requests by route, method and status");
    describe_histogram!("http_request_duration_seconds", "HTTP latency by route, method and status");
    describe_gauge!("db_pool_connections", "Postgres pool connections by pool (bookings, other) and state (in_use, idle)");
    describe_gauge!("db_pool_max_connections", "Most connections the booking pool may open: this replica's share of DATABASE_CONNECTION_BUDGET");
    describe_gauge!("mutex_seats_tracked", "Seats the in-process mutex map holds an entry for");
    describe_histogram!(
        "strategy_switch_pause_seconds",
        "How long a booking waited at the gate while the cluster switched strategy or reset"
    );
    describe_counter!(
        "idempotency_takeovers_total",
        "Idempotency keys this replica took over from a request whose replica died before answering"
    );
    describe_counter!("strategy_switches_total", "Switches and resets this replica coordinated, by outcome (complete, without_lagging)");
    describe_counter!("idempotent_replays_total", "Answers replayed to a request whose Idempotency-Key had been answered before");
    describe_counter!("seat_holds_total", "Steps in seat holds' lives, by event (taken, confirmed, released, expired, refused, ...)");
    describe_gauge!("seat_streams_open", "Seat-map event streams open on this replica");
    process().describe();
}

/// The process's own CPU time, memory, threads and file descriptors
/// (`process_*`, as Prometheus' Go client names them), read at each scrape.
fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Reads the process metrics now: call before rendering a scrape.
pub fn collect_process() {
    process().collect();
}

/// Creates every counter series at 0, so a dashboard shows "0 double
/// bookings" rather than "no data" before the first one happens.
fn register_zeroes() {
    counter!("idempotent_replays_total").absolute(0);
    counter!("idempotency_takeovers_total").absolute(0);
    for event in HOLD_EVENTS {
        counter!("seat_holds_total", "event" => event).absolute(0);
    }
    for outcome in ["complete", "without_lagging"] {
        counter!("strategy_switches_total", "outcome" => outcome).absolute(0);
    }
    gauge!("seat_streams_open").set(0.0);
    // An empty histogram until the first switch pauses a booking.
    let _ = histogram!("strategy_switch_pause_seconds");
    for strategy in StrategyName::ALL.map(StrategyName::as_str) {
        for status in BookingStatus::ALL.map(BookingStatus::as_str) {
            counter!("bookings_total", "strategy" => strategy, "status" => status).absolute(0);
        }
        for reason in Refusal::ALL.map(Refusal::as_str) {
            counter!("booking_failures_total", "strategy" => strategy, "reason" => reason).absolute(0);
        }
        for name in ["double_bookings_detected_total", "lock_contentions_total", "optimistic_retries_total", "fencing_token_rejections_total"] {
            counter!(name, "strategy" => strategy).absolute(0);
        }
    }
}

pub fn booking_finished(strategy: StrategyName, status: BookingStatus, reason: Option<Refusal>, took: Duration) {
    counter!("bookings_total", "strategy" => strategy.as_str(), "status" => status.as_str()).increment(1);
    if let Some(reason) = reason {
        counter!("booking_failures_total", "strategy" => strategy.as_str(), "reason" => reason.as_str()).increment(1);
    }
    if status == BookingStatus::DoubleBooked {
        counter!("double_bookings_detected_total", "strategy" => strategy.as_str()).increment(1);
    }
    histogram!("booking_duration_seconds", "strategy" => strategy.as_str()).record(took);
}

/// The steps of a seat hold's life: `taken`, `existing` (the customer's
/// live hold, again), `refused`, `refused_cap`, `confirmed`, `confirm_ended`
/// (410), `confirm_lost` (409), `released`, `expired` (swept, or found out
/// on release).
const HOLD_EVENTS: [&str; 9] = ["taken", "existing", "refused", "refused_cap", "confirmed", "confirm_ended", "confirm_lost", "released", "expired"];

/// A step in a seat hold's life, one of [`HOLD_EVENTS`].
pub fn hold_event(event: &'static str) {
    debug_assert!(HOLD_EVENTS.contains(&event), "{event} is not a hold event");
    counter!("seat_holds_total", "event" => event).increment(1);
}

pub fn idempotency_key_taken_over() {
    counter!("idempotency_takeovers_total").increment(1);
}

pub fn lock_acquired(strategy: StrategyName, waited: Duration) {
    histogram!("lock_acquire_seconds", "strategy" => strategy.as_str()).record(waited);
}

pub fn lock_held(strategy: StrategyName, held: Duration) {
    histogram!("lock_hold_seconds", "strategy" => strategy.as_str()).record(held);
}

pub fn lock_contended(strategy: StrategyName) {
    counter!("lock_contentions_total", "strategy" => strategy.as_str()).increment(1);
}

pub fn optimistic_retry(strategy: StrategyName) {
    counter!("optimistic_retries_total", "strategy" => strategy.as_str()).increment(1);
}

pub fn fencing_rejected(strategy: StrategyName) {
    counter!("fencing_token_rejections_total", "strategy" => strategy.as_str()).increment(1);
}

pub fn redlock_nodes_reachable(nodes: usize) {
    gauge!("redlock_nodes_reachable").set(nodes as f64);
}

pub fn strategy_applied(applied: StrategyName) {
    for strategy in StrategyName::ALL {
        gauge!("current_locking_strategy", "strategy" => strategy.as_str()).set(if strategy == applied { 1.0 } else { 0.0 });
    }
}

/// `pool` is `bookings` (the booking path's own pool) or `other` (sqlx).
pub fn db_pool(pool: &'static str, in_use: usize, idle: usize) {
    gauge!("db_pool_connections", "pool" => pool, "state" => "in_use").set(in_use as f64);
    gauge!("db_pool_connections", "pool" => pool, "state" => "idle").set(idle as f64);
}

/// The booking pool's size, this replica's share of the cluster's budget.
pub fn booking_pool_size(connections: usize) {
    gauge!("db_pool_max_connections", "pool" => "bookings").set(connections as f64);
}

/// Axum middleware: counts and times every request by its route template
/// (`/events/{id}`, not `/events/1`, so the label set stays small).
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = [("route", route), ("method", method), ("status", response.status().as_u16().to_string())];
    counter!("http_requests_total", &labels).increment(1);
    histogram!("http_request_duration_seconds", &labels).record(started.elapsed());
    response
}

pub fn idempotent_replay() {
    counter!("idempotent_replays_total").increment(1);
}

pub fn switch_pause(waited: Duration) {
    histogram!("strategy_switch_pause_seconds").record(waited);
}

pub fn switch_finished(outcome: &'static str) {
    counter!("strategy_switches_total", "outcome" => outcome).increment(1);
}

/// Seat-map streams open on this replica (`delta` is +1 or -1).
pub fn seat_streams(delta: f64) {
    gauge!("seat_streams_open").increment(delta);
}

pub fn mutex_map_size(seats: usize) {
    gauge!("mutex_seats_tracked").set(seats as f64);
}
