//! Crashes, not shutdowns: every process of a backend killed with SIGKILL
//! under keyed load, then started again.
//!
//! A clean stop flushes what it holds; a crash does not, so only a crash
//! shows what an acknowledgement is worth. `postgres-crash` compares every
//! booking a client was told is confirmed with what the database holds after
//! crash recovery; with `--synchronous-commit off` it runs once more with
//! commits acknowledged before their WAL is on disk, to show what that
//! loses. `redis-crash` kills the main Redis node under the strategies whose
//! lock lives in Redis.

use std::time::Duration;

use anyhow::Context;

use super::outages::{Measured, OUTAGE, Outage, command, under_load};
use super::{Lab, Row};
use booking_server::domain::StrategyName;

/// How commits are acknowledged in `postgres-crash`'s runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SynchronousCommit {
    /// Acknowledged once the WAL is on disk (Postgres' default). The
    /// scenario runs this way only.
    #[default]
    On,
    /// Also run it with `synchronous_commit = off` (set with ALTER SYSTEM,
    /// set back to `on` afterwards): acknowledged once the WAL is in memory.
    Off,
}

/// How long the WAL writer is held still before the crash.
const WAL_WRITER_STALL: Duration = Duration::from_secs(1);

/// Holds Postgres' WAL writer still (SIGSTOP) for `stall`, as a disk that
/// stops answering would, and leaves it so: the crash that follows kills it.
///
/// Why: with `synchronous_commit = off` a commit is acknowledged as soon as
/// its WAL is in memory, and the WAL writer writes it out within a few
/// hundred milliseconds. A crash loses what was acknowledged in that window,
/// a handful of bookings at most, and only if it strikes at the right moment.
/// Holding the writer still widens the window to `stall`, so every run shows
/// what the setting risks; with `on`, each commit writes and flushes its own
/// WAL before it is acknowledged, and the stall changes nothing.
pub(super) async fn stall_wal_writer(database_url: &str, stall: Duration) -> anyhow::Result<String> {
    let pool = sqlx::PgPool::connect(database_url).await.context("cannot reach the cluster's database")?;
    let pid: i32 = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
        .fetch_one(&pool)
        .await
        .context("cannot find Postgres' WAL writer in pg_stat_activity")?;
    pool.close().await;
    let stopped = std::process::Command::new("kill").args(["-STOP", &pid.to_string()]).status().context("cannot run kill")?;
    anyhow::ensure!(stopped.success(), "kill -STOP {pid} failed: the fault lab must run on the cluster's machine, as the same user");
    tokio::time::sleep(stall).await;
    Ok(format!("WAL writer (pid {pid}) held still {} ms", stall.as_millis()))
}

/// The pids a `cluster.sh kill` printed ("... (SIGKILL, pids 12 34); ..."),
/// and whether every one of them is gone.
fn killed_pids(printed: &str) -> (Vec<u32>, bool) {
    let pids: Vec<u32> = printed
        .split("pids ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|list| list.split_whitespace().filter_map(|pid| pid.parse().ok()).collect())
        .unwrap_or_default();
    let gone = !pids.is_empty() && pids.iter().all(|pid| !process_alive(*pid));
    (pids, gone)
}

/// A pid that names a running process (a zombie is dead).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
}

fn killed_text(what: &str, measured: &Measured) -> (String, bool) {
    let (pids, gone) = killed_pids(&measured.printed);
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let state = if gone { "all gone" } else { "NOT all gone" };
    (format!("SIGKILL to {what} (pids {}: {state})", pids.join(" ")), gone)
}

/// Sets how commits are acknowledged, with ALTER SYSTEM (it outlives the
/// crash, as a setting in postgresql.conf would); what is now in force.
async fn set_commits(database_url: &str, commits: SynchronousCommit) -> anyhow::Result<String> {
    let pool = sqlx::PgPool::connect(database_url).await.context("cannot reach the cluster's database to set synchronous_commit")?;
    let statement = match commits {
        SynchronousCommit::On => "ALTER SYSTEM RESET synchronous_commit",
        SynchronousCommit::Off => "ALTER SYSTEM SET synchronous_commit = off",
    };
    for statement in [statement, "SELECT pg_reload_conf()"] {
        sqlx::query(statement).execute(&pool).await.with_context(|| format!("{statement} failed"))?;
    }
    // Every backend rereads the configuration before its next statement; a
    // new session shows what they will use.
    tokio::time::sleep(Duration::from_millis(200)).await;
    pool.close().await;
    let pool = sqlx::PgPool::connect(database_url).await?;
    let setting: String = sqlx::query_scalar("SELECT current_setting('synchronous_commit')").fetch_one(&pool).await?;
    pool.close().await;
    Ok(setting)
}

/// `postgres-crash`: the durable run, and with `lab.crash_commits` =
/// [`SynchronousCommit::Off`] also the lesson's run with commits
/// acknowledged early.
pub async fn postgres_crash(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let outage = Outage {
        what: "postgres-crash".into(),
        stall_wal_writer: Some(WAL_WRITER_STALL),
        down_for: OUTAGE,
        break_it: vec![command(&["kill", "postgres"])],
        heal: vec![command(&["start", "postgres"])],
    };
    let runs: &[SynchronousCommit] = match lab.crash_commits {
        SynchronousCommit::On => &[SynchronousCommit::On],
        SynchronousCommit::Off => &[SynchronousCommit::On, SynchronousCommit::Off],
    };
    let mut rows = Vec::new();
    for &commits in runs {
        let setting = set_commits(&lab.database_url, commits).await?;
        let measured = under_load(lab, StrategyName::Pessimistic, 16, &outage).await;
        // Durable again, whatever happened: never leave the cluster unsafe.
        let restored = super::settled(|| set_commits(&lab.database_url, SynchronousCommit::On)).await;
        let measured = measured?;
        restored?;
        let (injected, gone) = killed_text("every Postgres process", &measured);
        let confirmed = measured.history.confirmed();
        let (verdict, as_taught) = match (commits, measured.lost) {
            (SynchronousCommit::On, 0) => ("nothing acknowledged was lost: every commit was on disk before its client heard of it".to_owned(), true),
            (SynchronousCommit::On, lost) => (format!("BROKEN: {lost} acknowledged booking(s) lost (is synchronous_commit off?)"), false),
            (SynchronousCommit::Off, 0) => ("lost nothing: no commit was acknowledged while the WAL writer was held".to_owned(), false),
            (SynchronousCommit::Off, lost) => (
                format!(
                    "{lost} of {confirmed} acknowledged booking(s) lost: acknowledged with their WAL still in memory, they died \
                     with Postgres"
                ),
                true,
            ),
        };
        rows.push(Row {
            strategy: format!("{} (synchronous_commit={setting})", StrategyName::Pessimistic),
            injected: format!(
                "{}{injected}, under 16 keyed clients; started again after 2 s",
                measured.stalled.as_deref().map(|stalled| format!("{stalled}, then ")).unwrap_or_default()
            ),
            clients_told: format!("{}; {} under way while it was down failed", measured.statuses(), measured.failed_during),
            database_holds: measured.audit.clone(),
            verdict: format!("{verdict}; {}; {} answers were 500", measured.recovery(), measured.server_errors()),
            as_taught: as_taught
                && gone
                && measured.failed_during > 0
                && measured.server_errors() == 0
                && measured.recovered.is_some()
                && (commits == SynchronousCommit::Off || measured.clean),
        });
    }
    Ok(rows)
}

/// `redis-crash`: the main Redis node killed, for the strategies whose lock
/// lives in Redis. It keeps nothing on disk, so it comes back empty.
pub async fn redis_crash(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let main = lab.control.main_redis()?;
    let outage = Outage { what: "redis-crash".into(), stall_wal_writer: None, down_for: OUTAGE, break_it: vec![command(&["kill", &main])], heal: vec![command(&["start", &main])] };
    let mut rows = Vec::new();
    for strategy in [StrategyName::Distributed, StrategyName::Redlock, StrategyName::Fenced] {
        let measured = under_load(lab, strategy, 4, &outage).await?;
        let (injected, gone) = killed_text(&main, &measured);
        let needs_main = strategy != StrategyName::Redlock;
        let unavailable = measured.history.by_status().get(&503).copied().unwrap_or(0);
        let (verdict, as_expected) = if needs_main {
            (
                "refused while its lock service was gone (503), nothing written; the locks it held died with it".to_owned(),
                measured.booked_during == 0 && unavailable > 0 && measured.failed_during > 0,
            )
        } else {
            ("kept booking: two of three nodes still grant the lock".to_owned(), measured.booked_during > 0)
        };
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("{injected} under 4 clients; started again, empty, after 2 s"),
            clients_told: format!("{}; {} booked while down", measured.statuses(), measured.booked_during),
            database_holds: measured.audit.clone(),
            verdict: format!("{verdict}; {}", measured.recovery()),
            as_taught: as_expected && gone && measured.server_errors() == 0 && measured.recovered.is_some() && measured.clean,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pids_a_kill_printed_are_read_back() {
        let printed = "==> killed postgres (SIGKILL, pids 4242 4243 4244); scripts/cluster.sh up or start postgres brings it back\n";
        let (pids, _) = killed_pids(printed);
        assert_eq!(pids, [4242, 4243, 4244]);
        assert_eq!(killed_pids("nothing killed").0, Vec::<u32>::new());
        let (_, gone) = killed_pids(&format!("(SIGKILL, pids {})", std::process::id()));
        assert!(!gone, "this very process is alive");
    }
}
