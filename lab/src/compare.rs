//! The strategy comparison, measured: every strategy in turn under the same
//! contended load through the load balancer, with the numbers a user compares.
//!
//! For each strategy: switch, create a fresh event, and let `concurrency`
//! workers book for `duration`. Consecutive requests go to the same seat
//! (`contenders` of them per seat), so they race: with no coordination they
//! double-book, with a lock all but one lose. Latency and throughput are
//! measured here, on the client; retries, contentions and double bookings are
//! read back from the cluster's own records, whichever replica served.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::client::{AnswerCounts, LabClient};
use crate::load::{self, Plan, Sent, create_event};
use booking_server::domain::StrategyName;

#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub concurrency: usize,
    pub contenders: usize,
}

/// One strategy's measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub strategy: StrategyName,
    pub attempts: usize,
    pub confirmed: usize,
    pub failed: usize,
    /// Bookings beyond the first on a seat, as recorded in the database.
    pub double_bookings: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests_per_sec: f64,
    pub optimistic_retries: i64,
    pub lock_contentions: i64,
    /// Answers that were neither a booking nor a 409.
    pub errors: usize,
    pub replicas: BTreeMap<String, usize>,
}

/// What the workers saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    answers: AnswerCounts,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.answers.merge(other.answers);
    }
}

/// Runs every strategy in turn, with a progress line on stderr.
pub async fn run(client: &LabClient, strategies: &[StrategyName], settings: &Settings) -> anyhow::Result<Vec<Row>> {
    let one = async |strategy: StrategyName, progress: &ProgressBar| {
        progress.set_message(format!("{strategy}: booking for {} s with {} workers", settings.duration.as_secs_f32(), settings.concurrency));
        run_strategy(client, strategy, settings, progress).await
    };
    load::each_strategy(strategies, one, |row: &Row| {
        format!("{} attempts, {} double bookings, p99 {:.1} ms", row.attempts, row.double_bookings, row.p99_ms)
    })
    .await
}

async fn run_strategy(client: &LabClient, strategy: StrategyName, settings: &Settings, progress: &ProgressBar) -> anyhow::Result<Row> {
    client.set_strategy(strategy.as_str()).await?;
    let event_id = create_event(client, &format!("compare {strategy}")).await?;
    let plan = Plan {
        event_id,
        concurrency: settings.concurrency,
        contenders: settings.contenders,
        customers: strategy.to_string(),
        limit: settings.duration,
    };
    let started = Instant::now();
    let load = load::start(client, &plan, |tally: &mut Tally, sent: Sent| {
        tally.latencies.push(sent.answered - sent.sent);
        tally.answers.record(sent.answer);
    });
    while !load.is_finished() {
        progress.set_message(format!("{strategy}: {} requests", load.requests()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut tally = Tally::default();
    for worker in load.join().await? {
        tally.merge(worker);
    }
    let elapsed = started.elapsed();

    let stats = client.get(&format!("/admin/stats?event_id={event_id}")).await?;
    let doubles = client.get(&format!("/admin/double-bookings?event_id={event_id}")).await?;
    let double_bookings = doubles["double_bookings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["booking_count"].as_u64())
        .map(|holders| holders - 1)
        .sum();
    client.delete(&format!("/admin/events/{event_id}")).await?;

    tally.latencies.sort_unstable();
    let attempts = tally.latencies.len();
    Ok(Row {
        strategy,
        attempts,
        confirmed: tally.answers.confirmed + tally.answers.double_booked,
        failed: tally.answers.failed,
        double_bookings,
        p50_ms: percentile_ms(&tally.latencies, 0.50),
        p99_ms: percentile_ms(&tally.latencies, 0.99),
        requests_per_sec: attempts as f64 / elapsed.as_secs_f64(),
        optimistic_retries: stats["totals"]["retries"].as_i64().unwrap_or(0),
        lock_contentions: stats["totals"]["reasons"]["lock_busy"].as_i64().unwrap_or(0),
        errors: tally.answers.errors,
        replicas: tally.answers.replicas,
    })
}

/// The latency below which `quantile` of the sorted samples fall, in ms.
pub fn percentile_ms(sorted: &[Duration], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * quantile).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

const HEADER: [&str; 11] = [
    "strategy",
    "attempts",
    "confirmed",
    "failed",
    "double bookings",
    "p50 ms",
    "p99 ms",
    "req/s",
    "optimistic retries",
    "lock contentions",
    "replicas",
];

fn cells(row: &Row) -> [String; 11] {
    [
        row.strategy.to_string(),
        row.attempts.to_string(),
        row.confirmed.to_string(),
        row.failed.to_string(),
        row.double_bookings.to_string(),
        format!("{:.1}", row.p50_ms),
        format!("{:.1}", row.p99_ms),
        format!("{:.0}", row.requests_per_sec),
        row.optimistic_retries.to_string(),
        row.lock_contentions.to_string(),
        row.replicas.len().to_string(),
    ]
}

/// The comparison as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = format!("| {} |\n", HEADER.join(" | "));
    out.push_str(&format!("|{}\n", ["---|"; 11].concat()));
    for row in rows {
        out.push_str(&format!("| {} |\n", cells(row).join(" | ")));
    }
    out
}

/// Writes `comparison.json`, `comparison.csv` and the chart,
/// `comparison.svg`, into `dir`.
pub fn write_files(rows: &[Row], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("comparison.json"), serde_json::to_string_pretty(rows)?)?;
    let mut csv = HEADER.map(|name| name.replace(' ', "_")).join(",") + "\n";
    for row in rows {
        csv.push_str(&cells(row).join(","));
        csv.push('\n');
    }
    std::fs::write(dir.join("comparison.csv"), csv)?;
    crate::chart::write_svg(rows, &dir.join("comparison.svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let samples: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&samples, 0.50), 50.0);
        assert_eq!(percentile_ms(&samples, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.99), 0.0);
    }
}
