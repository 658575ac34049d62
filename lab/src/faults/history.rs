//! What the fault lab's clients were told: every answer of the load
//! ([`crate::load`]) with when it was sent and answered, for the audit and
//! for the scenarios' timing questions (did anything book while Postgres was
//! down? when did bookings resume?).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::audit::HistoryEntry;
use crate::client::LabClient;
use crate::load::{self, Plan, Running, Sent};

/// Every answer the clients got, each with when its request was sent and
/// when the answer came.
#[derive(Debug, Default, Clone)]
pub struct History {
    pub entries: Arc<Mutex<Vec<(Instant, HistoryEntry, Instant)>>>,
}

impl History {
    /// Starts the load of `plan` with every answer recorded here.
    pub fn start_load(&self, client: &LabClient, plan: Plan) -> Running<()> {
        let history = self.clone();
        load::start(client, &plan, move |_: &mut (), sent| history.record(sent))
    }

    /// Records one request of the load.
    fn record(&self, sent: Sent) {
        let (status, outcome, strategy) = match &sent.answer {
            Ok(answer) => (
                answer.status.as_u16(),
                answer.body["status"].as_str().map(str::to_owned),
                answer.body["strategy"].as_str().map(str::to_owned),
            ),
            Err(_) => (0, None, None),
        };
        let entry = HistoryEntry { event_id: sent.event_id, seat_number: sent.seat, customer_id: sent.customer, status, outcome, strategy };
        self.entries.lock().expect("history poisoned").push((sent.sent, entry, sent.answered));
    }

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
