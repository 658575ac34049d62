//! Load for the outage scenarios: clients booking distinct seats through the
//! load balancer, every answer recorded as client history for the audit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::audit::HistoryEntry;
use crate::lab::client::LabClient;

/// Every answer the clients got, each with when its request was sent and
/// when the answer came.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub entries: Arc<Mutex<Vec<(Instant, HistoryEntry, Instant)>>>,
}

impl History {
    pub fn lines(&self) -> Vec<HistoryEntry> {
        self.entries.lock().expect("history poisoned").iter().map(|(_, entry, _)| entry.clone()).collect()
    }

    /// Bookings the clients were told are `confirmed`.
    pub fn confirmed(&self) -> usize {
        let entries = self.entries.lock().expect("history poisoned");
        entries.iter().filter(|(_, entry, _)| entry.outcome.as_deref() == Some("confirmed")).count()
    }

    /// Answers by HTTP status (0: no answer at all).
    pub fn by_status(&self) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for (_, entry, _) in self.entries.lock().expect("history poisoned").iter() {
            *counts.entry(entry.status).or_default() += 1;
        }
        counts
    }

    /// Answers by status as text (`16×200, 5×502, 1 no answer`), of the
    /// statuses `keep` selects.
    pub fn statuses(&self, keep: impl Fn(u16) -> bool) -> Vec<String> {
        self.by_status()
            .into_iter()
            .filter(|(status, _)| keep(*status))
            .map(|(status, count)| if status == 0 { format!("{count} no answer") } else { format!("{count}×{status}") })
            .collect()
    }

    /// Bookings confirmed (or double-booked) whose request was both sent and
    /// answered between `from` and `to`.
    pub fn confirmed_between(&self, from: Instant, to: Instant) -> usize {
        let entries = self.entries.lock().expect("history poisoned");
        entries.iter().filter(|(sent, entry, answered)| *sent >= from && *answered < to && entry.status == 200).count()
    }

    /// Requests under way at some time between `from` and `to` (sent before
    /// `to`, answered after `from`) that were answered with a 5xx, or not at all.
    pub fn failed_between(&self, from: Instant, to: Instant) -> usize {
        let entries = self.entries.lock().expect("history poisoned");
        entries.iter().filter(|(sent, entry, answered)| *sent < to && *answered >= from && (entry.status == 0 || entry.status >= 500)).count()
    }

    /// When the first request sent at or after `since` that booked was sent.
    pub fn first_booking_after(&self, since: Instant) -> Option<Instant> {
        let entries = self.entries.lock().expect("history poisoned");
        entries.iter().filter(|(sent, entry, _)| *sent >= since && entry.status == 200).map(|(sent, _, _)| *sent).min()
    }
}

/// Books seats of `event_id` with `clients` workers until `stop` is set (or
/// `limit` has passed), `contenders` consecutive requests per seat.
pub async fn run(lb: &LabClient, event_id: i64, clients: usize, contenders: usize, limit: Duration, stop: Arc<std::sync::atomic::AtomicBool>, history: History) {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + limit;
    let workers: Vec<_> = (0..clients)
        .map(|worker| {
            let (lb, next, stop, history) = (lb.clone(), next.clone(), stop.clone(), history.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let attempt = next.fetch_add(1, Ordering::Relaxed);
                    let seat = crate::lab::seat_name(attempt / contenders.max(1), 100, 200);
                    let customer = format!("fault-{worker}-{attempt}");
                    let sent = Instant::now();
                    let answer = lb.book(event_id, &seat, &customer).await;
                    let entry = match &answer {
                        Ok(answer) => HistoryEntry {
                            event_id,
                            seat_number: seat,
                            customer_id: customer,
                            status: answer.status.as_u16(),
                            outcome: answer.body["status"].as_str().map(str::to_owned),
                            strategy: answer.body["strategy"].as_str().map(str::to_owned),
                        },
                        Err(_) => HistoryEntry { event_id, seat_number: seat, customer_id: customer, status: 0, outcome: None, strategy: None },
                    };
                    history.entries.lock().expect("history poisoned").push((sent, entry, Instant::now()));
                    if answer.is_err() || answer.as_ref().is_ok_and(|a| a.status.is_server_error()) {
                        // An outage: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
}
