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
async fn inject(lab: &Lab, ttl: Duration, redis_nodes: &[String]) -> anyhow::Result<String> {
    let replica = format!("replica-{}", rand::random_range(1..=lab.replicas.len()));
    let node = redis_nodes[rand::random_range(0..redis_nodes.len())].clone();
    let fault = rand::random_range(0..4);
    let done = match fault {
        0 => {
            // Shorter than the lock's TTL: a pause past it is pause-holder's
            // lesson (distributed and redlock double-book), not a soak failure.
            lab.control.run(&["pause", &replica])?;
            tokio::time::sleep(ttl / 2).await;
            lab.control.run(&["resume", &replica])?;
            format!("{replica} paused {} ms", (ttl / 2).as_millis())
        }
        1 => {
            lab.control.run(&["kill", &replica])?;
            tokio::time::sleep(DOWN_FOR).await;
            lab.control.run(&["up"])?;
            format!("{replica} killed")
        }
        2 => {
            lab.control.run(&["stop", &node])?;
            tokio::time::sleep(DOWN_FOR).await;
            lab.control.run(&["start", &node])?;
            format!("{node} stopped")
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
    let redis_nodes = lab.control.redis_nodes()?;
    settled(|| lab.lb.set_strategy(StrategyName::SAFE[0].as_str())).await?;
    let event = fresh_event(&lab.lb, "fault lab: soak").await?;

    let history = History::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn({
        let (lb, stop, history) = (lab.lb.clone(), stop.clone(), history.clone());
        async move { load::run(&lb, event, 16, 4, duration + Duration::from_secs(60), stop, history).await }
    });

    let started = Instant::now();
    let slice = duration / StrategyName::SAFE.len() as u32;
    let mut faults = Vec::new();
    let mut switches = 0;
    while started.elapsed() < duration {
        let due = StrategyName::SAFE[((started.elapsed().as_secs_f64() / slice.as_secs_f64()) as usize).min(StrategyName::SAFE.len() - 1)];
        if settled(|| lab.lb.get("/admin/strategy")).await?["strategy"] != due.as_str() {
            settled(|| lab.lb.set_strategy(due.as_str())).await?;
            switches += 1;
        }
        faults.push(inject(lab, ttl, &redis_nodes).await?);
        tokio::time::sleep(FAULT_EVERY.saturating_sub(DOWN_FOR)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await?;
    lab.control.run(&["up"])?;

    let pool = sqlx::PgPool::connect(&lab.database_url).await?;
    let mut findings = audit::check(&pool, Some(event)).await?;
    findings.extend(audit::check_history(&pool, &history.lines()).await?);
    pool.close().await;
    let path = format!("/admin/events/{event}");
    settled(|| lab.lb.delete(&path)).await?;

    let lines = history.lines();
    let acknowledged = lines.iter().filter(|entry| entry.status == 200).count();
    let failures: Vec<String> = history
        .by_status()
        .into_iter()
        .filter(|(status, _)| *status == 0 || *status >= 500)
        .map(|(status, count)| if status == 0 { format!("{count} no answer") } else { format!("{count}×{status}") })
        .collect();
    let double = findings.iter().filter(|f| f.kind == audit::Kind::MultipleHolders).count();
    let lost = findings.iter().filter(|f| f.kind == audit::Kind::LostAcknowledgement).count();
    let broken = findings.iter().filter(|f| !f.expected).count();
    Ok(vec![Row {
        strategy: format!("{} in turn ({switches} switches)", StrategyName::SAFE.map(StrategyName::as_str).join(", ")),
        injected: format!("{} faults in {} s: {}", faults.len(), duration.as_secs(), faults.join(", ")),
        clients_told: format!(
            "{} attempts, {acknowledged} acknowledged, failures: {}",
            lines.len(),
            if failures.is_empty() { "none".to_owned() } else { failures.join(", ") }
        ),
        database_holds: format!("{double} double-booked seat(s), {lost} lost acknowledgement(s)"),
        verdict: if broken == 0 { "held: nothing double-sold, nothing acknowledged lost".into() } else { format!("BROKEN: {broken} invariant(s)") },
        as_taught: broken == 0 && acknowledged > 0,
    }])
}
