//! The seed lab's exercise for every strategy: switch, reset, fire a burst of
//! concurrent bookings at one seat through the load balancer, count.
//!
//! The burst is released by a barrier so that every request is in flight
//! before the first one can finish its hold time.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Barrier;

use super::client::{AnswerCounts, LabClient};
use crate::domain::StrategyName;

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

    /// Does the database hold what the clients were told? Every customer told
    /// they booked is a holder (holders = confirmed + double-booked answers),
    /// and the seat's `booked_by` is one of them: the confirmed one when
    /// there was exactly one winner.
    pub fn agrees_with_database(&self) -> Result<(), String> {
        let told = self.confirmed + self.double_booked;
        if self.holders != told as u64 {
            return Err(format!("{} holders in the database, {told} customers told they booked: {self:?}", self.holders));
        }
        match (told, &self.booked_by) {
            (0, None) => Ok(()),
            (0, Some(holder)) => Err(format!("nobody was told they booked, yet the seat is booked by {holder}: {self:?}")),
            (_, None) => Err(format!("{told} customers were told they booked a seat that is free: {self:?}")),
            (1, Some(holder)) if self.confirmed == 1 && &self.confirmed_customers[0] != holder => {
                Err(format!("{} was told confirmed, the seat is booked by {holder}: {self:?}", self.confirmed_customers[0]))
            }
            (_, Some(holder)) if !self.confirmed_customers.iter().chain(&self.double_booked_customers).any(|c| c == holder) => {
                Err(format!("the seat is booked by {holder}, who was told nothing of the kind: {self:?}"))
            }
            _ => Ok(()),
        }
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
