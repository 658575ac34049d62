//! The seed lab's exercise for every strategy: switch, reset, fire a burst of
//! concurrent bookings at one seat through the load balancer, count.
//!
//! The burst is released by a barrier so that every request is in flight
//! before the first one can finish its hold time.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Barrier;

use super::client::LabClient;
use crate::strategy::StrategyName;

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

    let mut exercise = Exercise {
        strategy,
        requests: concurrency,
        confirmed: 0,
        double_booked: 0,
        failed: 0,
        errors: 0,
        holders: 0,
        replicas: BTreeMap::new(),
    };
    for request in requests {
        match request.await? {
            Ok(answer) => {
                match answer.outcome() {
                    "confirmed" => exercise.confirmed += 1,
                    "double_booked" => exercise.double_booked += 1,
                    "failed" => exercise.failed += 1,
                    _ => exercise.errors += 1,
                }
                *exercise.replicas.entry(answer.instance.unwrap_or_else(|| "unknown".into())).or_default() += 1;
            }
            Err(_) => exercise.errors += 1,
        }
    }
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
