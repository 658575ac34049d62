//! `soak`: contended load through nginx for a while, every safe strategy in
//! turn, with a random fault every few seconds; then the audit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::load::{self, History};
use super::{Lab, Row, fresh_event, settled};
use crate::audit;
use crate::domain::StrategyName;

/// Time between two faults.
const FAULT_EVERY: Duration = Duration::from_secs(3);
/// How long a stopped backend stays down.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// One fault, injected and healed; what it was.
///
/// Faults stay inside the rules the safe strategies rely on: a replica is
/// paused for well under the lock TTL once its hold is counted (a pause past
/// it is pause-holder's lesson: distributed and redlock double-book), and a
/// Redis node that restarts empty stays down longer than the TTL, so every
/// lock it had granted has expired when it comes back (Redlock's rule for
/// nodes without persistence; otherwise a lock it forgot is granted twice).
async fn inject(lab: &Lab, hold: Duration, ttl: Duration, redis_nodes: &[String]) -> anyhow::Result<String> {
    let replica = format!("replica-{}", rand::random_range(1..=lab.replicas.len()));
    let node = redis_nodes[rand::random_range(0..redis_nodes.len())].clone();
    let fault = rand::random_range(0..4);
    let done = match fault {
        0 => {
            let pause = (ttl.saturating_sub(hold) / 3).max(Duration::from_millis(50));
            lab.control.run(&["pause", &replica])?;
            tokio::time::sleep(pause).await;
            lab.control.run(&["resume", &replica])?;
            format!("{replica} paused {} ms", pause.as_millis())
        }
        1 => {
            lab.control.run(&["kill", &replica])?;
            tokio::time::sleep(DOWN_FOR).await;
            lab.control.run(&["up"])?;
            format!("{replica} killed")
        }
        2 => {
            let down = DOWN_FOR.max(ttl + Duration::from_millis(200));
            lab.control.run(&["stop", &node])?;
            tokio::time::sleep(down).await;
            lab.control.run(&["start", &node])?;
            format!("{node} restarted empty after {} ms", down.as_millis())
        }
        _ => {
            lab.control.run(&["stop", "postgres"])?;
            tokio::time::sleep(DOWN_FOR).await;
            lab.control.run(&["start", "postgres"])?;
            "postgres stopped".to_owned()
        }
    };
    Ok(done)
}

pub async fn run(lab: &Lab, duration: Duration) -> anyhow::Result<Vec<Row>> {
    let settings = lab.lb.get("/admin/strategy").await?;
    let ttl = Duration::from_millis(settings["lock_ttl_ms"].as_u64().unwrap_or(5000));
    let hold = Duration::from_millis(settings["hold_ms"].as_u64().unwrap_or(50));
    let redis_nodes = lab.control.redis_nodes()?;
    let slice = duration / StrategyName::SAFE.len() as u32;
    let started = Instant::now();

    let mut rows = Vec::new();
    for strategy in StrategyName::SAFE {
        // One event per strategy, so the audit speaks of one strategy at a time.
        settled(|| lab.lb.set_strategy(strategy.as_str())).await?;
        let event = settled(|| fresh_event(&lab.lb, "fault lab: soak")).await?;
        let history = History::default();
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn({
            let (lb, stop, history) = (lab.lb.clone(), stop.clone(), history.clone());
            async move { load::run(&lb, event, 16, 4, slice + Duration::from_secs(60), stop, history).await }
        });
        let phase = Instant::now();
        let mut faults = Vec::new();
        while phase.elapsed() < slice {
            let at = started.elapsed().as_secs_f64();
            let fault = inject(lab, hold, ttl, &redis_nodes).await?;
            eprintln!("   {at:>5.1} s  {strategy}: {fault}");
            faults.push(fault);
            tokio::time::sleep(FAULT_EVERY.saturating_sub(DOWN_FOR)).await;
        }
        stop.store(true, Ordering::Relaxed);
        load.await?;
        lab.control.run(&["up"])?;
        rows.push(audited_row(lab, strategy, event, &history, &faults).await?);
    }
    Ok(rows)
}

/// Audits one strategy's event and history into its row.
async fn audited_row(lab: &Lab, strategy: StrategyName, event: i64, history: &History, faults: &[String]) -> anyhow::Result<Row> {
    let findings = lab.audit(event, history).await?;
    lab.clean_up(event).await?;

    let lines = history.lines();
    let acknowledged = lines.iter().filter(|entry| entry.status == 200).count();
    let failures = history.statuses(|status| status == 0 || status >= 500);
    let double = findings.iter().filter(|f| f.kind == audit::Kind::MultipleHolders).count();
    let lost = findings.iter().filter(|f| f.kind == audit::Kind::LostAcknowledgement).count();
    let other: Vec<String> = findings
        .iter()
        .filter(|f| !matches!(f.kind, audit::Kind::MultipleHolders | audit::Kind::SeatAcknowledgedTwice))
        .map(|f| format!("{:?} {}: {}", f.kind, f.seat_number, f.detail))
        .collect();
    // A lock without fencing is only as good as its TTL: a holder that a fault
    // stalls past it (Postgres down while it waits to write, say) writes late.
    let lock_only = matches!(strategy, StrategyName::Distributed | StrategyName::Redlock);
    let verdict = match (double, other.is_empty()) {
        (0, true) => "held: nothing double-sold, nothing acknowledged lost".to_owned(),
        (_, true) if lock_only => format!(
            "{double} seat(s) double-sold: a fault stalled a lock holder past its TTL and nothing checked its late write \
             (pause-holder's lesson; fenced survives it)"
        ),
        (_, true) => format!("BROKEN: {double} seat(s) double-sold"),
        (_, false) => format!("BROKEN: {}", other.join("; ")),
    };
    Ok(Row {
        strategy: strategy.to_string(),
        injected: format!("{} fault(s): {}", faults.len(), faults.join(", ")),
        clients_told: format!(
            "{} attempts, {acknowledged} acknowledged, failures: {}",
            lines.len(),
            if failures.is_empty() { "none".to_owned() } else { failures.join(", ") }
        ),
        database_holds: format!("{double} double-booked seat(s), {lost} lost acknowledgement(s)"),
        verdict,
        as_taught: acknowledged > 0 && other.is_empty() && (double == 0 || lock_only),
    })
}
