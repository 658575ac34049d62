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
}

impl Exercise {
    pub fn double_bookings(&self) -> u64 {
        self.holders.saturating_sub(1)
    }
}

/// Switches to `strategy`, resets the event and fires `concurrency` bookings of one seat at once.
pub async fn run_one(client: &LabClient, strategy: StrategyName, event_id: i64, seat: &str, concurrency: usize) -> anyhow::Result<Exercise> {
    client.set_strategy(strategy.as_str()).await?;
    client.reset(event_id).await?;
    let barrier = Arc::new(Barrier::new(concurrency));
    let requests: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, barrier, seat) = (client.clone(), barrier.clone(), seat.to_owned());
            tokio::spawn(async move {
                barrier.wait().await;
                client.book(event_id, &seat, &format!("{strategy}-customer-{i}")).await
            })
        })
        .collect();

    let mut counts = AnswerCounts::default();
    for request in requests {
        counts.record(request.await?);
    }
    let mut exercise = Exercise {
        strategy,
        requests: concurrency,
        confirmed: counts.confirmed,
        double_booked: counts.double_booked,
        failed: counts.failed,
        errors: counts.errors,
        holders: 0,
        replicas: counts.replicas,
    };
    exercise.holders = client.holders(event_id, seat).await?;
    Ok(exercise)
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
