//! Outages under load: a backend (Postgres, one or two Redis nodes) goes
//! away for a few seconds, or a replica is killed, while clients book
//! through nginx. Answers are counted by status, and the audit checks every
//! acknowledgement against the database.

use std::time::{Duration, Instant};


use super::history::History;
use super::{Lab, Row, settled};
use crate::client::LabClient;
use crate::load::{Plan, create_event};
use crate::audit;
use booking_server::domain::StrategyName;

/// How long a backend stays down.
pub(super) const OUTAGE: Duration = Duration::from_secs(2);
/// How long the load may run after the fault before the scenario gives up.
const RECOVERY_LIMIT: Duration = Duration::from_secs(15);

/// One outage: the cluster.sh commands that cause it and heal it.
pub(super) struct Outage {
    pub(super) what: String,
    /// First hold Postgres' WAL writer still for this long (see
    /// [`super::crashes`]), under load, then break it.
    pub(super) stall_wal_writer: Option<Duration>,
    /// How long the backend stays broken before the heal.
    pub(super) down_for: Duration,
    pub(super) break_it: Vec<Vec<String>>,
    pub(super) heal: Vec<Vec<String>>,
}

/// What the clients saw around one outage.
pub(super) struct Measured {
    pub(super) history: History,
    /// What the commands that broke the cluster printed (a kill names its pids).
    pub(super) printed: String,
    /// What was done before them (the WAL writer held still), if anything.
    pub(super) stalled: Option<String>,
    /// Bookings confirmed while the backend was down.
    pub(super) booked_during: usize,
    /// Requests under way while it was down that got a 5xx or no answer:
    /// proof that the fault landed where the clients are.
    pub(super) failed_during: usize,
    /// From healing until the first confirmed booking.
    pub(super) recovered: Option<Duration>,
    /// Did `/ready` on replica-1 fail during the outage?
    pub(super) unready: bool,
    pub(super) audit: String,
    pub(super) clean: bool,
    /// Acknowledged bookings the database does not have.
    pub(super) lost: usize,
}

impl Measured {
    pub(super) fn statuses(&self) -> String {
        self.history.statuses(|_| true).join(", ")
    }

    pub(super) fn server_errors(&self) -> usize {
        self.history.by_status().get(&500).copied().unwrap_or(0)
    }

    pub(super) fn recovery(&self) -> String {
        match self.recovered {
            Some(took) => format!("booking again {} ms after the repair", took.as_millis()),
            None => format!("no booking within {} s of the repair", RECOVERY_LIMIT.as_secs()),
        }
    }
}

/// Audits the event and the clients' history; the findings as text,
/// whether every invariant of a safe strategy held, and how many
/// acknowledgements were lost.
async fn audit_with(lab: &Lab, event: i64, history: &History) -> anyhow::Result<(String, bool, usize)> {
    let findings = lab.audit(event, history).await?;
    // Broken invariants by kind, each with its first few seats.
    let mut broken: std::collections::BTreeMap<String, Vec<&str>> = std::collections::BTreeMap::new();
    for finding in findings.iter().filter(|f| !f.expected) {
        broken.entry(format!("{:?}", finding.kind)).or_default().push(&finding.seat_number);
    }
    let lost = findings.iter().filter(|f| f.kind == audit::Kind::LostAcknowledgement).count();
    let confirmed = history.confirmed();
    let text = if broken.is_empty() {
        format!("{confirmed} confirmed, all there; audit clean")
    } else {
        let kinds: Vec<String> = broken
            .iter()
            .map(|(kind, seats)| {
                let more = if seats.len() > 5 { ", …" } else { "" };
                format!("{kind} ×{} ({}{more})", seats.len(), seats[..seats.len().min(5)].join(", "))
            })
            .collect();
        format!("{lost} of {confirmed} acknowledgement(s) lost; BROKEN: {}", kinds.join("; "))
    };
    Ok((text, broken.is_empty(), lost))
}

/// Runs each command; what they printed.
fn run_all(lab: &Lab, commands: &[Vec<String>]) -> anyhow::Result<String> {
    let mut printed = String::new();
    for command in commands {
        printed.push_str(&lab.control.run(&command.iter().map(String::as_str).collect::<Vec<_>>())?);
    }
    Ok(printed)
}

/// Books under `strategy` with `clients` workers through nginx, breaks the
/// cluster for `outage.down_for`, heals it, and waits for bookings to resume.
pub(super) async fn under_load(lab: &Lab, strategy: StrategyName, clients: usize, outage: &Outage) -> anyhow::Result<Measured> {
    settled(|| lab.lb.set_strategy(strategy.as_str())).await?;
    let event = create_event(&lab.lb, &format!("fault lab: {}", outage.what)).await?;
    let history = History::default();
    let load = history.start_load(&lab.lb, Plan { event_id: event, concurrency: clients, contenders: 1, customers: "fault".into(), limit: RECOVERY_LIMIT * 2 });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stalled = match outage.stall_wal_writer {
        Some(stall) => super::crashes::stall_wal_writer(&lab.database_url, stall).await.map(Some),
        None => Ok(None),
    };
    // An error waits until the load has stopped.
    let injected = stalled.and_then(|stalled| Ok((stalled, run_all(lab, &outage.break_it)?)));
    // From here on the backend is down: a request sent now cannot have
    // taken its lock before the outage.
    let broken = Instant::now();
    tokio::time::sleep(outage.down_for / 2).await;
    let unready = lab.replicas[0].get("/ready").await.is_err();
    tokio::time::sleep(outage.down_for / 2).await;
    let healed_at = Instant::now();
    let healed = run_all(lab, &outage.heal);
    while history.first_booking_after(healed_at).is_none() && healed_at.elapsed() < RECOVERY_LIMIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop();
    load.join().await?;
    let (stalled, printed) = injected?;
    healed?;

    let booked_during = history.confirmed_between(broken, healed_at);
    let failed_during = history.failed_between(broken, healed_at);
    let recovered = history.first_booking_after(healed_at).map(|at| at - healed_at);
    let (audit, clean, lost) = audit_with(lab, event, &history).await?;
    lab.clean_up(event).await?;
    Ok(Measured { history, printed, stalled, booked_during, failed_during, recovered, unready, audit, clean, lost })
}

/// Idempotency keys the given replicas took over from dead requests, in all.
async fn takeovers(replicas: &[&LabClient]) -> anyhow::Result<u64> {
    let mut total = 0.0;
    for replica in replicas {
        total += replica.counter("idempotency_takeovers_total").await?;
    }
    Ok(total as u64)
}

pub(super) fn command(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

pub async fn postgres_restart(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let outage = Outage {
        what: "postgres-restart".into(),
        stall_wal_writer: None,
        down_for: OUTAGE,
        break_it: vec![command(&["stop", "postgres"])],
        heal: vec![command(&["start", "postgres"])],
    };
    let mut rows = Vec::new();
    for strategy in StrategyName::ALL {
        let measured = under_load(lab, strategy, 8, &outage).await?;
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("Postgres stopped {} s under 8 clients", OUTAGE.as_secs()),
            clients_told: format!("{}; /ready {}", measured.statuses(), if measured.unready { "503" } else { "still 200" }),
            database_holds: measured.audit.clone(),
            verdict: format!("{}; {} answers were 500", measured.recovery(), measured.server_errors()),
            as_taught: measured.server_errors() == 0 && measured.recovered.is_some() && measured.clean && measured.unready,
        });
    }
    Ok(rows)
}

/// `redis-minority` (one node of three down) or `redis-majority` (two down,
/// the main one among them).
pub async fn redis_nodes_down(lab: &Lab, majority: bool) -> anyhow::Result<Vec<Row>> {
    let nodes = lab.control.redis_nodes()?;
    anyhow::ensure!(nodes.len() >= 3, "the Redis scenarios need three Redis nodes; cluster.sh status lists {nodes:?}");
    // The minority: the last node, which only Redlock uses. The majority:
    // the main node (strategy switches, heartbeats, distributed and fenced
    // locks) and one more.
    let down: Vec<&String> = if majority { vec![&nodes[0], &nodes[1]] } else { vec![&nodes[2]] };
    let outage = Outage {
        what: if majority { "redis-majority" } else { "redis-minority" }.into(),
        stall_wal_writer: None,
        down_for: OUTAGE,
        break_it: down.iter().map(|node| command(&["stop", node])).collect(),
        heal: down.iter().map(|node| command(&["start", node])).collect(),
    };
    let names: Vec<&str> = down.iter().map(|node| node.as_str()).collect();
    let mut rows = Vec::new();
    for strategy in StrategyName::ALL {
        let measured = under_load(lab, strategy, 4, &outage).await?;
        let needs_main = matches!(strategy, StrategyName::Distributed | StrategyName::Fenced);
        let refuses = match strategy {
            StrategyName::Redlock => majority,
            _ if needs_main => majority,
            _ => false,
        };
        let unavailable = measured.history.by_status().get(&503).copied().unwrap_or(0);
        let verdict = match (refuses, strategy) {
            (true, StrategyName::Redlock) => "refused: no Redlock majority (503), nothing written".to_owned(),
            (true, _) => "refused: it depends on the main Redis node, which was down (503), nothing written".to_owned(),
            (false, StrategyName::Redlock) => "kept booking: two of three nodes still grant the lock".to_owned(),
            (false, _) if needs_main => "kept booking: its lock lives on the main node, which stayed up".to_owned(),
            (false, _) => "kept booking: it does not use Redis to book".to_owned(),
        };
        let as_expected = if refuses { measured.booked_during == 0 && unavailable > 0 } else { measured.booked_during > 0 };
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("{} stopped {} s under 4 clients", names.join(" and "), OUTAGE.as_secs()),
            clients_told: format!("{}; {} booked while down", measured.statuses(), measured.booked_during),
            database_holds: measured.audit.clone(),
            verdict: format!("{verdict}; {}", measured.recovery()),
            as_taught: as_expected && measured.server_errors() == 0 && measured.recovered.is_some() && measured.clean,
        });
    }
    Ok(rows)
}

/// The main Redis restarts empty (it keeps nothing on disk).
pub async fn redis_restart(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let main = lab.control.main_redis()?;
    let outage = Outage { what: "redis-restart".into(), stall_wal_writer: None, down_for: OUTAGE, break_it: vec![command(&["stop", &main])], heal: vec![command(&["start", &main])] };
    let mut rows = Vec::new();
    for strategy in StrategyName::ALL {
        let before = lab.lb.get("/admin/strategy").await?;
        let measured = under_load(lab, strategy, 4, &outage).await?;
        let mut applied = Vec::new();
        for replica in &lab.replicas {
            let now = replica.get("/admin/strategy").await?;
            applied.push((now["strategy"].as_str().unwrap_or("?").to_owned(), now["version"].as_u64().unwrap_or(0)));
        }
        let kept = applied.iter().all(|(name, _)| name == strategy.as_str());
        let no_rollback = applied.iter().all(|(_, version)| *version >= before["version"].as_u64().unwrap_or(0));
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("{main} (the main node) restarted empty, down {} s", OUTAGE.as_secs()),
            clients_told: format!("{}; {} booked while down", measured.statuses(), measured.booked_during),
            database_holds: measured.audit.clone(),
            verdict: format!(
                "every replica still applies {strategy} (epoch from Postgres, never rolled back); locks held at the restart \
                 were lost with Redis' memory; {}",
                measured.recovery()
            ),
            as_taught: kept && no_rollback && measured.server_errors() == 0 && measured.recovered.is_some() && measured.clean,
        });
    }
    Ok(rows)
}

pub async fn replica_crash(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(lab.replicas.len() >= 2, "replica-crash needs two replicas: scripts/cluster.sh up 3");
    let mut rows = Vec::new();
    let runs = [("uncontended, with keys", 1, true), ("contended 4 per seat, with keys", 4, true), ("uncontended, no keys", 1, false)];
    for (load_kind, contenders, keys) in runs {
        let strategy = StrategyName::Pessimistic;
        lab.lb.set_strategy(strategy.as_str()).await?;
        let event = create_event(&lab.lb, "fault lab: replica-crash").await?;
        let history = History::default();
        let client = if keys { lab.lb.clone() } else { lab.lb.clone().without_keys() };
        let survivors: Vec<&LabClient> = lab.replicas.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, r)| r).collect();
        let takeovers_before = takeovers(&survivors).await?;
        let load = history.start_load(&client, Plan { event_id: event, concurrency: 16, contenders, customers: "fault".into(), limit: RECOVERY_LIMIT });
        tokio::time::sleep(Duration::from_millis(700)).await;
        let killed = lab.control.run(&["kill", "replica-2"]);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        load.stop();
        load.join().await?;
        killed?;
        lab.control.run(&["up"])?;
        // nginx counted replica-2 as failed: it tries it again after
        // fail_timeout (2 s), and then it is back in rotation.
        let restarted = Instant::now();
        let mut served_again = None;
        while served_again.is_none() && restarted.elapsed() < Duration::from_secs(10) {
            if lab.lb.whoami().await.is_ok_and(|instance| instance == "replica-2") {
                served_again = Some(restarted.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let taken_over = takeovers(&survivors).await? - takeovers_before;
        let failures = history.lines().iter().filter(|e| e.status == 0 || e.status >= 500).count();
        let (database, clean, _) = audit_with(lab, event, &history).await?;
        lab.clean_up(event).await?;
        let statuses = history.statuses(|_| true).join(", ");
        // Proof that the kill landed mid-request: without keys, clients lost
        // answers; with keys, the survivors took over keys of requests that
        // died with it.
        let landed = if keys { taken_over > 0 } else { failures > 0 };
        rows.push(Row {
            strategy: format!("{strategy} ({load_kind})"),
            injected: format!(
                "replica-2 killed (SIGKILL) under 16 clients through nginx; {taken_over} of its in-flight keys taken over by the others"
            ),
            clients_told: if keys {
                format!("{statuses}; {failures} client-visible failure(s)")
            } else {
                format!("{statuses}; {failures} client-visible failure(s): did they book? they cannot know")
            },
            database_holds: database,
            verdict: match served_again {
                Some(took) => format!("nginx routed around it; `up` brought it back and it served again {} ms later", took.as_millis()),
                None => "replica-2 did not serve again within 10 s of `up`".into(),
            },
            as_taught: clean && served_again.is_some() && landed && (!keys || failures == 0),
        });
    }
    Ok(rows)
}
