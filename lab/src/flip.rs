//! Switching is a race too: contended bookings while the strategy flips.
//!
//! Workers book contended seats (`contenders` consecutive requests per seat)
//! through the load balancer while another task switches the cluster among
//! the safe strategies every `interval`. Without a barrier, a booking that
//! started under one strategy and one under the next do not see each other's
//! locks, and seats end with two holders. With it, none do. Afterwards the
//! database is asked what it holds, and that is compared with what the
//! clients were told.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{AnswerCounts, LabClient};
use crate::load::{self, Plan, Sent, create_event};
use crate::progress::Ticker;
use booking_server::domain::StrategyName;

#[derive(Debug, Clone)]
pub struct Settings {
    pub strategies: Vec<StrategyName>,
    pub duration: Duration,
    pub concurrency: usize,
    pub contenders: usize,
    pub interval: Duration,
}

/// What a run did, as the clients saw it and as the database holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub switches: usize,
    /// Switch requests that did not answer 200.
    pub failed_switches: usize,
    /// Switches that went ahead without a replica that did not acknowledge.
    pub switches_with_lagging: usize,
    pub attempts: usize,
    pub confirmed: usize,
    pub double_booked_answers: usize,
    pub refused: usize,
    /// Answers that were neither a booking nor a 409, or no answer at all.
    pub errors: usize,
    pub refusals: std::collections::BTreeMap<String, usize>,
    /// Seats that more than one booking holds, in the database.
    pub double_booked_seats: u64,
    /// Seats the database shows as booked.
    pub booked_seats: u64,
    /// How long bookings paused at the gates, per switch: the median of the
    /// switches' p50, and the largest p99.
    pub pause_p50_ms: f64,
    pub pause_max_p99_ms: f64,
    pub paused_requests: u64,
}

impl Report {
    /// Every seat the clients were told they own is booked once, and nothing
    /// else is booked.
    pub fn consistent(&self) -> bool {
        self.double_booked_seats == 0 && self.double_booked_answers == 0 && self.booked_seats == self.confirmed as u64
    }
}

/// Runs the flip test against `client` (normally nginx) and cleans up after.
pub async fn run(client: &LabClient, settings: &Settings, progress: &Ticker) -> anyhow::Result<Report> {
    anyhow::ensure!(!settings.strategies.is_empty(), "name at least one strategy to flip among");
    client.set_strategy(settings.strategies[0].as_str()).await?;
    let event_id = create_event(client, "flip").await?;
    let plan = Plan {
        event_id,
        concurrency: settings.concurrency,
        contenders: settings.contenders,
        customers: "flip".into(),
        limit: settings.duration,
    };
    let deadline = Instant::now() + settings.duration;
    let load = load::start(client, &plan, |answers: &mut AnswerCounts, sent: Sent| answers.record(sent.answer));

    let mut switches = Vec::new();
    let mut failed_switches = 0;
    let mut turn = 1;
    let started = Instant::now();
    while Instant::now() + settings.interval < deadline {
        tokio::time::sleep(settings.interval).await;
        let strategy = settings.strategies[turn % settings.strategies.len()];
        turn += 1;
        progress.at(started.elapsed(), format!("switching to {strategy}: {} switches, {} requests", switches.len(), load.requests()));
        match client.set_strategy(strategy.as_str()).await {
            Ok(answer) => switches.push(answer),
            Err(error) => {
                tracing::warn!(%error, "switch failed");
                failed_switches += 1;
            }
        }
    }
    let mut answers = AnswerCounts::default();
    for worker in load.join().await? {
        answers.merge(worker);
    }

    let doubles = client.get(&format!("/admin/double-bookings?event_id={event_id}")).await?;
    let event = client.get(&format!("/events/{event_id}")).await?;
    client.delete(&format!("/admin/events/{event_id}")).await?;

    let mut p50s: Vec<f64> = switches.iter().filter_map(|answer| answer["pause"]["p50_ms"].as_f64()).collect();
    p50s.sort_by(f64::total_cmp);
    Ok(Report {
        switches: switches.len(),
        failed_switches,
        switches_with_lagging: switches.iter().filter(|answer| answer["lagging"].as_array().is_some_and(|l| !l.is_empty())).count(),
        attempts: answers.total(),
        confirmed: answers.confirmed,
        double_booked_answers: answers.double_booked,
        refused: answers.failed,
        errors: answers.errors,
        refusals: answers.reasons.clone(),
        double_booked_seats: doubles["count"].as_u64().unwrap_or(0),
        booked_seats: event["seats"]["booked"].as_u64().unwrap_or(0),
        pause_p50_ms: p50s.get(p50s.len() / 2).copied().unwrap_or(0.0),
        pause_max_p99_ms: switches.iter().filter_map(|answer| answer["pause"]["p99_ms"].as_f64()).fold(0.0, f64::max),
        paused_requests: switches.iter().filter_map(|answer| answer["pause"]["paused_requests"].as_u64()).sum(),
    })
}

/// The report as a short table.
pub fn table(report: &Report) -> String {
    let refusals: Vec<String> = report.refusals.iter().map(|(reason, count)| format!("{reason} {count}")).collect();
    let rows = [
        ("switches", format!("{} ({} failed, {} went ahead without a replica)", report.switches, report.failed_switches, report.switches_with_lagging)),
        ("booking attempts", report.attempts.to_string()),
        ("confirmed answers", report.confirmed.to_string()),
        ("double_booked answers", report.double_booked_answers.to_string()),
        ("refused (409)", format!("{} ({})", report.refused, refusals.join(", "))),
        ("errors (5xx, no answer)", report.errors.to_string()),
        ("seats booked in the database", report.booked_seats.to_string()),
        ("seats double-booked in the database", report.double_booked_seats.to_string()),
        ("booking pause per switch", format!("p50 {:.1} ms, worst p99 {:.1} ms, {} bookings paused", report.pause_p50_ms, report.pause_max_p99_ms, report.paused_requests)),
        ("verdict", if report.consistent() { "held: every confirmed seat has exactly one holder".into() } else { "BROKEN: see the double bookings".into() }),
    ];
    rows.iter().map(|(name, value)| format!("{name:>38}: {value}\n")).collect()
}
