//! The fault lab: break the running native cluster on purpose, under load,
//! and see what each strategy does about it.
//!
//! Each scenario injects one failure through `scripts/cluster.sh` (see
//! [`control`]), drives requests through nginx or straight at one replica,
//! and reports per strategy what was injected, what the clients were told,
//! what the database holds, and whether that is what the lesson says.
//!
//! - [`pause_holder`]: a replica frozen (SIGSTOP) while it holds a seat,
//!   past the lock's TTL, while another replica books the seat.
//! - [`outages`]: one or two Redis nodes stopped, the main Redis restarted
//!   empty, Postgres stopped for a few seconds, a replica killed (SIGKILL),
//!   all under load; the audit then checks every acknowledgement.
//! - [`consensus`]: etcd members down, the etcd leader killed under load,
//!   and every lock service restarted (`fenced`'s Redis beside etcd).
//! - [`holds`]: a payment that lands after its hold expired, a replica
//!   killed between hold and confirm, Postgres stopped during a flash sale.
//! - [`crashes`]: every Postgres process, or the main Redis, killed with
//!   SIGKILL under load: what a crash (not a clean stop) leaves of the
//!   acknowledgements.

pub mod consensus;
pub mod control;
pub mod crashes;
pub mod history;
pub mod holds;
pub mod outages;
pub mod pause_holder;
pub mod soak;

use std::fmt::Write;

use anyhow::Context;

use serde::Serialize;

use crate::client::LabClient;
use control::Control;

/// The scenarios, by the name the command line uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    PauseHolder,
    RedisMinority,
    RedisMajority,
    RedisRestart,
    PostgresRestart,
    PostgresCrash,
    RedisCrash,
    ReplicaCrash,
    EtcdMinority,
    EtcdMajority,
    EtcdLeader,
    LockRestart,
    HoldExpiry,
    HoldReplicaCrash,
    FlashSalePostgresRestart,
    Soak,
}

impl Scenario {
    pub const ALL: [Scenario; 16] = [
        Self::PauseHolder,
        Self::RedisMinority,
        Self::RedisMajority,
        Self::RedisRestart,
        Self::PostgresRestart,
        Self::PostgresCrash,
        Self::RedisCrash,
        Self::ReplicaCrash,
        Self::EtcdMinority,
        Self::EtcdMajority,
        Self::EtcdLeader,
        Self::LockRestart,
        Self::HoldExpiry,
        Self::HoldReplicaCrash,
        Self::FlashSalePostgresRestart,
        Self::Soak,
    ];

    /// What the scenario teaches, in two or three sentences.
    pub fn lesson(self) -> &'static str {
        match self {
            Self::PauseHolder => {
                "A lock holder that pauses past its TTL (a GC pause, a VM stall) loses the lock without knowing it. \
                 A lock alone cannot stop its late write: distributed and redlock double-book, while fenced (a token the row \
                 checks) and optimistic (a version the row checks) refuse it. pessimistic keeps the row lock for as long as \
                 the transaction lives, so the second customer waits, for a bounded time."
            }
            Self::RedisMinority => {
                "Redlock asks three independent Redis nodes and needs a majority, so one node down costs nothing. \
                 distributed and fenced keep their lock on one node (the main one here), which this scenario leaves up; \
                 the other strategies do not use Redis to book at all."
            }
            Self::RedisMajority => {
                "With two of three nodes down, Redlock has no majority and must refuse (503, writing nothing) rather than \
                 guess. The main node is one of the two: distributed and fenced, whose lock lives there, refuse too, while \
                 pessimistic and optimistic carry on. A replica keeps the strategy it applied; switching waits for Redis."
            }
            Self::RedisRestart => {
                "The main Redis restarts with an empty memory. The strategy and its epoch live in Postgres, so nothing rolls \
                 back; locks held at that instant vanish with Redis' memory, which is why a lock alone is not a safety \
                 argument. Bookings resume as soon as Redis answers again."
            }
            Self::PostgresRestart => {
                "When the database goes away, every replica must say so (503, naming the database) and never 500 or hang. \
                 Nothing acknowledged may be lost, and booking resumes by itself once Postgres is back."
            }
            Self::PostgresCrash => {
                "A crash is not a clean stop: every Postgres process is killed (SIGKILL) under keyed load, and nothing gets \
                 to flush. A booking acknowledged with synchronous_commit on had its commit on disk before the client heard \
                 of it, so crash recovery brings every one back. With synchronous_commit off (--synchronous-commit off adds \
                 that run), a commit is acknowledged from memory, and the last ones die with the process: clients were told \
                 confirmed, and the seat is free."
            }
            Self::RedisCrash => {
                "The main Redis node is killed (SIGKILL) and comes back empty. distributed and fenced keep their lock there, \
                 so they refuse (503) while it is gone and write nothing; redlock still has two of three nodes and keeps \
                 booking. Locks held at the crash die with it, which is why a lock alone is not a safety argument."
            }
            Self::Soak => {
                "Everything at once, for a while: contended load under every safe strategy in turn, and a fault every few \
                 seconds, each kind at least once per strategy in a seeded random order (a replica paused or killed, a Redis \
                 node or Postgres crashed). The audit must find no \
                 acknowledged booking lost, and no seat double-sold under pessimistic, optimistic or fenced. distributed \
                 and redlock may double-sell: a fault that stalls a lock holder past its TTL (Postgres down while it \
                 waits to write) is a pause by another name."
            }
            Self::EtcdMinority => {
                "etcd is a Raft cluster: a write is answered once a majority of its members has it on disk. With one \
                 member of three down, two are still a majority, so the etcd lock keeps granting and bookings continue."
            }
            Self::EtcdMajority => {
                "With two of three members down there is no majority, so etcd grants no lease and no lock: the etcd \
                 strategy answers 503 naming etcd and writes nothing, rather than guess. Bookings resume once a \
                 majority is back."
            }
            Self::EtcdLeader => {
                "Killing the leader costs an election, not the data: the two followers elect a new leader within a \
                 second or two (the election timeout), bookings pause while they do, and resume without the old \
                 leader. Nothing is double-booked or lost: every grant was on a majority's disks."
            }
            Self::LockRestart => {
                "Restart the lock service and book the same seats again. fenced's token counters lived in Redis' \
                 memory: counting again from 1, every seat stamped higher would refuse new holders (stale_token) \
                 until the count caught up, so fenced seeds a lost counter from the seat row. etcd's token is its \
                 revision, kept in the Raft log on disk, so it keeps rising across a restart of every member and \
                 needs no repair."
            }
            Self::HoldExpiry => {
                "A hold is a lease. Alice's payment lands just after her hold expired, and Bob has taken the seat \
                 meanwhile: she must not get it. Who decides \"expired\"? Not a replica's clock: the confirm locks the \
                 hold and asks Postgres' now() in the same transaction that would book, so under every strategy the \
                 late payment is refused (410) and Bob's confirm books the seat."
            }
            Self::HoldReplicaCrash => {
                "A hold lives in Postgres, not in the replica that wrote it. Kill that replica between the hold and the \
                 payment, and the confirm succeeds on another replica, once: the same Idempotency-Key sent again gets \
                 the same booking."
            }
            Self::FlashSalePostgresRestart => {
                "Postgres stops in the middle of a flash sale. Every answer while it is down is a 503 that names the \
                 database, never a 500; a customer whose confirm got no final answer sends it again with the same key \
                 and learns the truth. No acknowledged booking is lost, no seat is sold twice, and the sale sells out \
                 once the database is back."
            }
            Self::ReplicaCrash => {
                "A replica killed mid-request takes its answers with it. Without an Idempotency-Key its clients get an \
                 error and cannot tell whether they booked. With one, nginx (or the client) sends the request again to \
                 another replica, which takes the dead replica's key over and books exactly once: no client sees a \
                 failure. The audit shows every acknowledged booking in the database; `cluster.sh up` brings the replica back."
            }
        }
    }
}

/// Where the lab runs.
#[derive(Clone)]
pub struct Lab {
    /// nginx.
    pub lb: LabClient,
    /// Each replica's own port, replica-1 first.
    pub replicas: Vec<LabClient>,
    pub control: Control,
    /// The cluster's database, for the audit.
    pub database_url: String,
    /// How long `soak` runs (at least one fault of every kind per strategy).
    pub soak: std::time::Duration,
    /// The seed of `soak`'s faults; `None` draws one (and prints it).
    pub soak_seed: Option<u64>,
    /// Where to append every answer the scenarios' clients got, as JSON
    /// lines that `booking-service audit --history` reads.
    pub history_file: Option<std::path::PathBuf>,
    /// `postgres-crash` with `Off`: also the run that loses acknowledgements.
    pub crash_commits: crashes::SynchronousCommit,
}

impl Lab {
    /// Deletes a scenario's event, unless a history file is being written:
    /// then `audit --history` needs the event's bookings later.
    pub(crate) async fn clean_up(&self, event: i64) -> anyhow::Result<()> {
        if self.history_file.is_none() {
            let path = format!("/admin/events/{event}");
            settled(|| self.lb.delete(&path)).await?;
        }
        Ok(())
    }

    /// Saves `history` (see [`Lab::save_history`]) and audits the event's
    /// rows and the clients' answers against the database.
    pub(crate) async fn audit(&self, event: i64, history: &history::History) -> anyhow::Result<Vec<crate::audit::Finding>> {
        self.save_history(history)?;
        let pool = sqlx::PgPool::connect(&self.database_url).await.context("cannot reach the cluster's database for the audit")?;
        let mut findings = crate::audit::check(&pool, Some(event)).await?;
        findings.extend(crate::audit::check_history(&pool, &history.lines()).await?);
        pool.close().await;
        Ok(findings)
    }

    /// Appends `history` to the history file, if there is one.
    pub(crate) fn save_history(&self, history: &history::History) -> anyhow::Result<()> {
        let Some(path) = &self.history_file else { return Ok(()) };
        let mut lines = String::new();
        for entry in history.lines() {
            lines.push_str(&serde_json::to_string(&entry)?);
            lines.push('\n');
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        std::io::Write::write_all(&mut file, lines.as_bytes())?;
        Ok(())
    }
}

/// One strategy's row in a scenario's table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub strategy: String,
    pub injected: String,
    pub clients_told: String,
    pub database_holds: String,
    pub verdict: String,
    /// Whether what happened is what the lesson says happens.
    pub as_taught: bool,
}

/// What a scenario did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub lesson: &'static str,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn as_taught(&self) -> bool {
        self.rows.iter().all(|row| row.as_taught)
    }
}

/// Runs one scenario; `soak` runs for `lab.soak`.
pub async fn run(lab: &Lab, scenario: Scenario) -> anyhow::Result<Report> {
    let rows = match scenario {
        Scenario::PauseHolder => pause_holder::run(lab).await?,
        Scenario::RedisMinority => outages::redis_nodes_down(lab, false).await?,
        Scenario::RedisMajority => outages::redis_nodes_down(lab, true).await?,
        Scenario::RedisRestart => outages::redis_restart(lab).await?,
        Scenario::PostgresRestart => outages::postgres_restart(lab).await?,
        Scenario::PostgresCrash => crashes::postgres_crash(lab).await?,
        Scenario::RedisCrash => crashes::redis_crash(lab).await?,
        Scenario::ReplicaCrash => outages::replica_crash(lab).await?,
        Scenario::EtcdMinority => consensus::members_down(lab, false).await?,
        Scenario::EtcdMajority => consensus::members_down(lab, true).await?,
        Scenario::EtcdLeader => consensus::leader_killed(lab).await?,
        Scenario::LockRestart => consensus::lock_service_restart(lab).await?,
        Scenario::HoldExpiry => holds::expiry(lab).await?,
        Scenario::HoldReplicaCrash => holds::replica_crash(lab).await?,
        Scenario::FlashSalePostgresRestart => holds::flash_sale_postgres_restart(lab).await?,
        Scenario::Soak => soak::run(lab, lab.soak).await?,
    };
    Ok(Report { scenario, lesson: scenario.lesson(), rows })
}

/// A scenario's report as the lesson, then a Markdown table.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n\n{}\n", serde_json::to_value(report.scenario).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(), report.lesson);
    out.push_str("| strategy | injected | clients were told | database holds | verdict |\n|---|---|---|---|---|\n");
    for row in &report.rows {
        let verdict = if row.as_taught { row.verdict.clone() } else { format!("**UNEXPECTED**: {}", row.verdict) };
        let _ = writeln!(out, "| {} | {} | {} | {} | {} |", row.strategy, row.injected, row.clients_told, row.database_holds, verdict);
    }
    out
}

/// Retries an admin call for up to 10 s: right after a backend comes back,
/// the first calls may still find it unreachable (a clear 503).
pub(crate) async fn settled<T, F, Fut>(mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if std::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}
