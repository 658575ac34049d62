//! `postgres-restart` and `replica-crash`: a backend or a replica goes away
//! under load through nginx; the answers are counted by status, and the
//! audit checks every acknowledgement against the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::load::{self, History};
use super::{Lab, Row, fresh_event};
use crate::audit;
use crate::domain::StrategyName;

/// How long Postgres stays down.
const OUTAGE: Duration = Duration::from_secs(2);
/// How long the load may run after the fault before the scenario gives up.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

fn statuses(history: &History) -> String {
    let counts: Vec<String> = history
        .by_status()
        .into_iter()
        .map(|(status, count)| if status == 0 { format!("{count} no answer") } else { format!("{count}×{status}") })
        .collect();
    counts.join(", ")
}

/// Audits the database and the clients' history; the findings, as text, and
/// whether any safe-strategy invariant broke.
async fn audit_with(lab: &Lab, event: i64, history: &History) -> anyhow::Result<(String, bool)> {
    let pool = sqlx::PgPool::connect(&lab.database_url).await.context("cannot reach the cluster's database for the audit")?;
    let mut findings = audit::check(&pool, Some(event)).await?;
    findings.extend(audit::check_history(&pool, &history.lines()).await?);
    pool.close().await;
    let broken: Vec<String> = findings.iter().filter(|f| !f.expected).map(|f| format!("{:?} {}", f.kind, f.seat_number)).collect();
    let lost = findings.iter().filter(|f| f.kind == audit::Kind::LostAcknowledgement).count();
    let confirmed = history.lines().iter().filter(|e| e.outcome.as_deref() == Some("confirmed")).count();
    let text = if broken.is_empty() {
        format!("{confirmed} confirmed, all there; audit clean")
    } else {
        format!("{lost} acknowledgement(s) lost; BROKEN: {}", broken.join(", "))
    };
    Ok((text, broken.is_empty()))
}

/// Starts `clients` workers on a fresh event; returns what stops them.
fn start_load(lab: &Lab, event: i64, clients: usize, contenders: usize, history: &History) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn({
        let (lb, stop, history) = (lab.lb.clone(), stop.clone(), history.clone());
        async move { load::run(&lb, event, clients, contenders, RECOVERY_LIMIT * 2, stop, history).await }
    });
    (stop, task)
}

pub async fn postgres_restart(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for strategy in StrategyName::ALL {
        lab.lb.set_strategy(strategy.as_str()).await?;
        let event = fresh_event(&lab.lb, "fault lab: postgres-restart").await?;
        let history = History::default();
        let (stop, load) = start_load(lab, event, 8, 1, &history);
        tokio::time::sleep(Duration::from_millis(500)).await;

        lab.control.run(&["stop", "postgres"])?;
        tokio::time::sleep(OUTAGE / 2).await;
        let ready = lab.replicas[0].get("/ready").await;
        tokio::time::sleep(OUTAGE / 2).await;
        lab.control.run(&["start", "postgres"])?;
        let restarted = Instant::now();
        while history.first_booking_after(restarted).is_none() && restarted.elapsed() < RECOVERY_LIMIT {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        load.await?;

        let recovered = history.first_booking_after(restarted).map(|at| at - restarted);
        let server_errors = history.by_status().get(&500).copied().unwrap_or(0);
        let (database, clean) = audit_with(lab, event, &history).await?;
        lab.lb.delete(&format!("/admin/events/{event}")).await?;
        let readiness = if ready.is_err() { "/ready 503" } else { "/ready still 200" };
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("Postgres stopped {} s under 8 clients", OUTAGE.as_secs()),
            clients_told: format!("{}; {readiness}", statuses(&history)),
            database_holds: database,
            verdict: match recovered {
                Some(took) => format!("booking again {} ms after the restart; {server_errors} answers were 500", took.as_millis()),
                None => format!("no booking within {} s of the restart", RECOVERY_LIMIT.as_secs()),
            },
            as_taught: server_errors == 0 && recovered.is_some() && clean && ready.is_err(),
        });
    }
    Ok(rows)
}

pub async fn replica_crash(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(lab.replicas.len() >= 2, "replica-crash needs two replicas: scripts/cluster.sh up 3");
    let mut rows = Vec::new();
    for (load_kind, contenders) in [("uncontended", 1), ("contended, 4 per seat", 4)] {
        let strategy = StrategyName::Pessimistic;
        lab.lb.set_strategy(strategy.as_str()).await?;
        let event = fresh_event(&lab.lb, "fault lab: replica-crash").await?;
        let history = History::default();
        let (stop, load) = start_load(lab, event, 16, contenders, &history);
        tokio::time::sleep(Duration::from_millis(700)).await;
        lab.control.run(&["kill", "replica-2"])?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.store(true, Ordering::Relaxed);
        load.await?;
        lab.control.run(&["up"])?;
        let mut served_again = false;
        for _ in 0..60 {
            if lab.lb.whoami().await.is_ok_and(|instance| instance == "replica-2") {
                served_again = true;
                break;
            }
        }

        let failures = history.lines().iter().filter(|e| e.status == 0 || e.status >= 500).count();
        let (database, clean) = audit_with(lab, event, &history).await?;
        lab.lb.delete(&format!("/admin/events/{event}")).await?;
        rows.push(Row {
            strategy: format!("{strategy} ({load_kind})"),
            injected: "replica-2 killed (SIGKILL) under 16 clients through nginx".into(),
            clients_told: format!("{}; {failures} client-visible failure(s): did they book? they cannot know", statuses(&history)),
            database_holds: database,
            verdict: if served_again { "nginx routed around it; `up` brought it back and it serves".into() } else { "replica-2 did not serve again after `up`".into() },
            as_taught: clean && served_again,
        });
    }
    Ok(rows)
}
