//! `soak`: contended load through nginx for a while, every safe strategy in
//! turn, with a fault every few seconds; then the audit.
//!
//! The faults come from a seeded generator: the seed is printed, and
//! `--seed` replays the same faults in the same order on the same targets.
//! Every strategy gets every kind of fault at least once (a shuffled round
//! of all four, then more rounds while its time lasts), so a run can never
//! miss the one that matters.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::history::History;
use super::{Lab, Row, settled};
use crate::load::{Plan, create_event};
use crate::audit;
use booking_server::domain::StrategyName;

/// Time between two faults.
const FAULT_EVERY: Duration = Duration::from_secs(3);
/// How long a crashed backend stays down.
const DOWN_FOR: Duration = Duration::from_secs(1);

/// The kinds of fault, each injected at least once per strategy.
#[derive(Debug, Clone, Copy)]
enum Fault {
    PauseReplica,
    KillReplica,
    CrashRedis,
    CrashPostgres,
}

impl Fault {
    const ALL: [Fault; 4] = [Self::PauseReplica, Self::KillReplica, Self::CrashRedis, Self::CrashPostgres];
}

/// One fault, injected and healed; what it was.
///
/// Faults stay inside the rules the safe strategies rely on: a replica is
/// paused for well under the lock TTL once its hold is counted (a pause past
/// it is pause-holder's lesson: distributed and redlock double-book), and a
/// Redis node that restarts empty stays down longer than the TTL, so every
/// lock it had granted has expired when it comes back (Redlock's rule for
/// nodes without persistence; otherwise a lock it forgot is granted twice).
/// Crashes are SIGKILL: nothing gets to flush or hand over.
async fn inject(lab: &Lab, fault: Fault, rng: &mut StdRng, hold: Duration, ttl: Duration, redis_nodes: &[String]) -> anyhow::Result<String> {
    let replica = format!("replica-{}", rng.random_range(1..=lab.replicas.len()));
    let node = redis_nodes[rng.random_range(0..redis_nodes.len())].clone();
    let done = match fault {
        Fault::PauseReplica => {
            let pause = (ttl.saturating_sub(hold) / 3).max(Duration::from_millis(50));
            lab.control.run(&["pause", &replica])?;
            tokio::time::sleep(pause).await;
            lab.control.run(&["resume", &replica])?;
            format!("{replica} paused {} ms", pause.as_millis())
        }
        Fault::KillReplica => {
            lab.control.run(&["kill", &replica])?;
            tokio::time::sleep(DOWN_FOR).await;
            lab.control.run(&["up"])?;
            format!("{replica} killed (SIGKILL)")
        }
        Fault::CrashRedis => {
            let down = DOWN_FOR.max(ttl + Duration::from_millis(200));
            lab.control.run(&["kill", &node])?;
            tokio::time::sleep(down).await;
            lab.control.run(&["start", &node])?;
            format!("{node} killed (back empty after {} ms)", down.as_millis())
        }
        Fault::CrashPostgres => {
            lab.control.run(&["kill", "postgres"])?;
            tokio::time::sleep(DOWN_FOR).await;
            lab.control.run(&["start", "postgres"])?;
            "postgres killed (SIGKILL)".to_owned()
        }
    };
    Ok(done)
}

pub async fn run(lab: &Lab, duration: Duration) -> anyhow::Result<Vec<Row>> {
    let settings = lab.lb.get("/admin/strategy").await?;
    let ttl = Duration::from_millis(settings["lock_ttl_ms"].as_u64().unwrap_or(5000));
    let hold = Duration::from_millis(settings["hold_ms"].as_u64().unwrap_or(50));
    let redis_nodes = lab.control.redis_nodes()?;
    let seed = lab.soak_seed.unwrap_or_else(rand::random);
    eprintln!("   soak: seed {seed} (faults replay with --seed {seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let slice = duration / StrategyName::SAFE.len() as u32;
    let started = Instant::now();

    let mut rows = Vec::new();
    for strategy in StrategyName::SAFE {
        // One event per strategy, so the audit speaks of one strategy at a time.
        settled(|| lab.lb.set_strategy(strategy.as_str())).await?;
        let event = settled(|| create_event(&lab.lb, "fault lab: soak")).await?;
        let history = History::default();
        let plan = Plan { event_id: event, concurrency: 16, contenders: 4, customers: "fault".into(), limit: slice * 4 + Duration::from_secs(120) };
        let load = history.start_load(&lab.lb, plan);
        let phase = Instant::now();
        let mut faults = Vec::new();
        // Whole shuffled rounds of every kind: at least one, more while the slice lasts.
        while faults.len() < Fault::ALL.len() || phase.elapsed() < slice {
            let mut round = Fault::ALL;
            round.shuffle(&mut rng);
            for fault in round {
                let at = started.elapsed().as_secs_f64();
                let done = inject(lab, fault, &mut rng, hold, ttl, &redis_nodes).await?;
                eprintln!("   {at:>5.1} s  {strategy}: {done}");
                faults.push(done);
                tokio::time::sleep(FAULT_EVERY.saturating_sub(DOWN_FOR)).await;
            }
        }
        load.stop();
        load.join().await?;
        lab.control.run(&["up"])?;
        rows.push(audited_row(lab, strategy, event, &history, seed, &faults).await?);
    }
    Ok(rows)
}

/// Audits one strategy's event and history into its row.
async fn audited_row(lab: &Lab, strategy: StrategyName, event: i64, history: &History, seed: u64, faults: &[String]) -> anyhow::Result<Row> {
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
        injected: format!("seed {seed}: {} fault(s): {}", faults.len(), faults.join(", ")),
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
