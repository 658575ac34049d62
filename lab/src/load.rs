//! The one load driver: clients booking contended seats of one event
//! through the API, for `compare`, `flip` and the fault lab alike.
//!
//! `concurrency` workers each take the next request number, book the seat
//! it maps to (`contenders` consecutive numbers share a seat, so they race)
//! for a customer of their own, and hand every answer to the caller's
//! `record`, into a tally of the worker's own (no lock on the hot path). They
//! stop at the plan's time limit or when told to, whichever comes first.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinHandle;
use indicatif::{ProgressBar, ProgressStyle};
use booking_server::domain::StrategyName;

use crate::client::{Answer, LabClient};

/// Seats per row of the events the lab creates.
pub const SEATS_PER_ROW: usize = 100;
/// Rows of those events: 20 000 seats, more than a run books.
pub const ROWS: usize = 200;

/// Creates an event of [`ROWS`] × [`SEATS_PER_ROW`] seats named `name`,
/// returning its id.
pub async fn create_event(client: &LabClient, name: &str) -> anyhow::Result<i64> {
    let body = serde_json::json!({ "name": name, "rows": ROWS, "seats_per_row": SEATS_PER_ROW });
    let event = client.post_json("/admin/events", body).await?;
    event["event"]["id"].as_i64().context("the created event has no id")
}

/// The name of the `index`-th seat of an event that `POST /admin/events`
/// made with `rows` rows of `seats_per_row`: rows A..Z, then AA..ZZ.
pub fn seat_name(index: usize, seats_per_row: usize, rows: usize) -> String {
    let (row, seat) = (index / seats_per_row % rows, index % seats_per_row + 1);
    let row_name = if row < 26 {
        char::from(b'A' + row as u8).to_string()
    } else {
        format!("{}{}", char::from(b'A' + (row / 26 - 1) as u8), char::from(b'A' + (row % 26) as u8))
    };
    format!("{row_name}{seat}")
}

/// What to load: which event, how many clients, how contended, how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// An event made by [`create_event`].
    pub event_id: i64,
    /// Workers, each with one request in flight.
    pub concurrency: usize,
    /// Consecutive requests that race for the same seat.
    pub contenders: usize,
    /// Customers are named `{customers}-{worker}-{request}`.
    pub customers: String,
    /// No request is sent after this long, whether or not stopped.
    pub limit: Duration,
}

/// One request the load sent, and what came of it.
pub struct Sent {
    pub event_id: i64,
    pub seat: String,
    pub customer: String,
    pub sent: Instant,
    pub answered: Instant,
    /// Any HTTP answer; an error only when none came at all.
    pub answer: anyhow::Result<Answer>,
}

impl Sent {
    /// No answer, or a 5xx: the cluster is (partly) down.
    fn is_outage(&self) -> bool {
        self.answer.as_ref().map_or(true, |answer| answer.status.is_server_error())
    }
}

/// Load under way; each worker's tally comes back from [`Running::join`].
pub struct Running<T> {
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<T>>,
}

/// Starts the load: `record` is given every request's [`Sent`] together with
/// its worker's tally.
pub fn start<T, F>(client: &LabClient, plan: &Plan, record: F) -> Running<T>
where
    T: Default + Send + 'static,
    F: Fn(&mut T, Sent) + Clone + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + plan.limit;
    let contenders = plan.contenders.max(1);
    let workers = (0..plan.concurrency)
        .map(|worker| {
            let (client, next, stop, record, plan) = (client.clone(), next.clone(), stop.clone(), record.clone(), plan.clone());
            tokio::spawn(async move {
                let mut tally = T::default();
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let request = next.fetch_add(1, Ordering::Relaxed);
                    let seat = seat_name(request / contenders, SEATS_PER_ROW, ROWS);
                    let customer = format!("{}-{worker}-{request}", plan.customers);
                    let sent = Instant::now();
                    let answer = client.book(plan.event_id, &seat, &customer).await;
                    let sent = Sent { event_id: plan.event_id, seat, customer, sent, answered: Instant::now(), answer };
                    let outage = sent.is_outage();
                    record(&mut tally, sent);
                    if outage {
                        // Do not spin against a cluster that is down.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                tally
            })
        })
        .collect();
    Running { next, stop, workers }
}

impl<T> Running<T> {
    /// Requests sent so far.
    pub fn requests(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }

    /// Whether every worker has stopped (the time limit passed).
    pub fn is_finished(&self) -> bool {
        self.workers.iter().all(JoinHandle::is_finished)
    }

    /// Tells the workers to send nothing more; requests in flight finish.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for every worker to stop, and returns their tallies.
    pub async fn join(self) -> anyhow::Result<Vec<T>> {
        let mut tallies = Vec::with_capacity(self.workers.len());
        for worker in self.workers {
            tallies.push(worker.await.context("a load worker failed")?);
        }
        Ok(tallies)
    }
}

/// Runs `one` for each strategy in turn under a progress bar on stderr,
/// printing the `summary` of each result above the bar as it comes in.
pub async fn each_strategy<R>(
    strategies: &[StrategyName],
    mut one: impl AsyncFnMut(StrategyName, &ProgressBar) -> anyhow::Result<R>,
    summary: impl Fn(&R) -> String,
) -> anyhow::Result<Vec<R>> {
    let progress = ProgressBar::new(strategies.len() as u64)
        .with_style(ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}").expect("valid template"));
    progress.enable_steady_tick(Duration::from_millis(120));
    let mut results = Vec::with_capacity(strategies.len());
    for &strategy in strategies {
        let result = one(strategy, &progress).await?;
        progress.println(format!("{strategy:>12}: {}", summary(&result)));
        results.push(result);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::seat_name;

    #[test]
    fn seat_names_match_the_rows_the_database_creates() {
        assert_eq!(seat_name(0, 100, 200), "A1");
        assert_eq!(seat_name(99, 100, 200), "A100");
        assert_eq!(seat_name(100, 100, 200), "B1");
        assert_eq!(seat_name(2599, 100, 200), "Z100");
        assert_eq!(seat_name(2600, 100, 200), "AA1");
        assert_eq!(seat_name(19_999, 100, 200), "GR100");
    }
}
