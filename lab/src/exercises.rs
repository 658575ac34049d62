//! The seed lab's exercise for every strategy: switch, reset, fire a burst of
//! concurrent bookings at one seat through the load balancer, count.
//!
//! The burst is released by a barrier so that every request is in flight
//! before the first one can finish its hold time.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Barrier;

use crate::client::{AnswerCounts, LabClient};
use booking_server::domain::StrategyName;

/// What one burst did under one strategy.
#[derive(Debug, Clone, Serialize)]
pub struct Exercise {
    pub strategy: StrategyName,
    pub requests: usize,
    pub confirmed: usize,
    pub double_booked: usize,
    pub failed: usize,
    /// Answers that were neither a booking nor a 409 (5xx, transport errors).
    pub errors: usize,
    /// How many bookings hold the seat afterwards; above 1 is a double booking.
    pub holders: u64,
    /// Requests served per replica (`X-Instance-Id`).
    pub replicas: BTreeMap<String, usize>,
    /// Refusals by `reason`.
    pub refusals: BTreeMap<String, usize>,
    /// The customers told `confirmed`, then those told `double_booked`.
    pub confirmed_customers: Vec<String>,
    pub double_booked_customers: Vec<String>,
    /// The seat's `booked_by` afterwards, as the database has it.
    pub booked_by: Option<String>,
}

impl Exercise {
    pub fn double_bookings(&self) -> u64 {
        self.holders.saturating_sub(1)
    }

    /// Does the database hold what the clients were told? `seat` is read
    /// from Postgres ([`crate::audit::seat`]), not through the API: the
    /// customers with a booking row are exactly those told they booked, the
    /// seat's own holder count and `is_booked` agree with the rows, and
    /// `booked_by` is one of them (the confirmed one when there was exactly
    /// one winner).
    pub fn agrees_with(&self, seat: &crate::audit::SeatRecord) -> Result<(), String> {
        let mut told: Vec<&str> = self.confirmed_customers.iter().chain(&self.double_booked_customers).map(String::as_str).collect();
        let mut rows: Vec<&str> = seat.holders.iter().map(String::as_str).collect();
        told.sort_unstable();
        rows.sort_unstable();
        if told != rows {
            return Err(format!("customers told they booked: {told:?}; booking rows in Postgres: {rows:?}: {seat:?}"));
        }
        if seat.holders_counted != rows.len() as i32 {
            return Err(format!("the seat counts {} holders, Postgres has {} booking rows: {seat:?}", seat.holders_counted, rows.len()));
        }
        match (rows.is_empty(), seat.is_booked, &seat.booked_by) {
            (true, false, None) => Ok(()),
            (true, _, _) => Err(format!("nobody holds the seat, yet it is marked booked: {seat:?}")),
            (false, false, _) | (false, _, None) => Err(format!("{} customers hold a seat marked free: {seat:?}", rows.len())),
            (false, true, Some(holder)) if !rows.contains(&holder.as_str()) => {
                Err(format!("the seat is booked by {holder}, who holds no booking: {seat:?}"))
            }
            (false, true, Some(holder)) if self.confirmed == 1 && self.double_booked == 0 && &self.confirmed_customers[0] != holder => {
                Err(format!("{} was told confirmed, the seat is booked by {holder}: {seat:?}", self.confirmed_customers[0]))
            }
            _ => Ok(()),
        }
    }
}

impl Exercise {
    /// [`Exercise::agrees_with`] the seat as Postgres holds it, and the
    /// audit of the event finds no broken invariant.
    pub async fn check_in_postgres(&self, pool: &sqlx::PgPool, event_id: i64, seat: &str) -> Result<(), String> {
        let record = crate::audit::seat(pool, event_id, seat).await.map_err(|error| format!("cannot read seat {seat}: {error}"))?;
        self.agrees_with(&record)?;
        let findings = crate::audit::check(pool, Some(event_id)).await.map_err(|error| format!("cannot audit: {error}"))?;
        let broken: Vec<_> = findings.iter().filter(|finding| !finding.expected).collect();
        if broken.is_empty() { Ok(()) } else { Err(format!("the audit found broken invariants: {broken:?}")) }
    }
}

/// Switches to `strategy`, resets the event and fires `concurrency` bookings of one seat at once.
pub async fn run_one(client: &LabClient, strategy: StrategyName, event_id: i64, seat: &str, concurrency: usize) -> anyhow::Result<Exercise> {
    client.set_strategy(strategy.as_str()).await?;
    client.reset(event_id).await?;
    race(std::slice::from_ref(client), strategy, event_id, seat, concurrency).await
}

/// Fires `concurrency` bookings of one seat at once, round-robin over
/// `clients` (replicas, or one load balancer), under whatever strategy the
/// cluster applies (`strategy` labels the result); then reads back what the
/// database holds.
pub async fn race(clients: &[LabClient], strategy: StrategyName, event_id: i64, seat: &str, concurrency: usize) -> anyhow::Result<Exercise> {
    let barrier = Arc::new(Barrier::new(concurrency));
    let requests: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, barrier, seat) = (clients[i % clients.len()].clone(), barrier.clone(), seat.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                let customer = format!("{strategy}-customer-{i}");
                (client.book(event_id, &seat, &customer).await, customer)
            })
        })
        .collect();

    let mut counts = AnswerCounts::default();
    let (mut confirmed_customers, mut double_booked_customers) = (Vec::new(), Vec::new());
    for request in requests {
        let (answer, customer) = request.await?;
        match answer.as_ref().map(|answer| answer.outcome()) {
            Ok("confirmed") => confirmed_customers.push(customer),
            Ok("double_booked") => double_booked_customers.push(customer),
            _ => {}
        }
        counts.record(answer);
    }
    Ok(Exercise {
        strategy,
        requests: concurrency,
        confirmed: counts.confirmed,
        double_booked: counts.double_booked,
        failed: counts.failed,
        errors: counts.errors,
        holders: clients[0].holders(event_id, seat).await?,
        replicas: counts.replicas,
        refusals: counts.reasons,
        confirmed_customers,
        double_booked_customers,
        booked_by: clients[0].booked_by(event_id, seat).await?,
    })
}

/// Runs the exercise for each strategy in turn.
pub async fn run(client: &LabClient, strategies: &[StrategyName], event_id: i64, seat: &str, concurrency: usize) -> anyhow::Result<Vec<Exercise>> {
    let mut results = Vec::with_capacity(strategies.len());
    for &strategy in strategies {
        results.push(run_one(client, strategy, event_id, seat, concurrency).await?);
    }
    Ok(results)
}

/// A Markdown table of the results.
pub fn table(results: &[Exercise]) -> String {
    let mut out = String::from("| strategy | confirmed | double booked | failed | errors | holders of the seat | served by |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---|\n");
    for exercise in results {
        let served: Vec<String> = exercise.replicas.iter().map(|(replica, count)| format!("{replica} ({count})")).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}{} | {} |\n",
            exercise.strategy,
            exercise.confirmed,
            exercise.double_booked,
            exercise.failed,
            exercise.errors,
            exercise.holders,
            if exercise.holders > 1 { " ⚠ double booking" } else { "" },
            served.join(", "),
        ));
    }
    out
}
