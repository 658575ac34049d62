//! The consensus lock broken on purpose: etcd members down, the leader
//! killed under load, and every member restarted, with `fenced` beside
//! `etcd` in the last one (its tokens live in Redis' memory; etcd's
//! revisions live in the Raft log on disk).

use std::time::{Duration, Instant};

use super::outages::{OUTAGE, Outage, command, under_load};
use super::{Lab, Row, settled};
use crate::client::Answer;
use crate::load::create_event;
use booking_server::domain::StrategyName;

/// How long two members stay down. A booking asks each member in turn, up to
/// a second each, and the survivor forwards calls to the lost leader until it
/// notices (its election timeout): the outage outlasts a few such rounds, so
/// that the clients see its 503s, not only a slow answer after the repair.
const MAJORITY_DOWN: Duration = Duration::from_secs(6);

/// `etcd-minority` (one member of three down) or `etcd-majority` (two down).
pub async fn members_down(lab: &Lab, majority: bool) -> anyhow::Result<Vec<Row>> {
    let members = members(lab)?;
    let leader = lab.control.etcd_leader()?;
    // The minority: one follower. The majority: the leader and a follower.
    let followers: Vec<&String> = members.iter().filter(|name| **name != leader).collect();
    let down: Vec<String> = if majority { vec![leader.clone(), followers[0].clone()] } else { vec![followers[0].clone()] };
    let outage = Outage {
        what: if majority { "etcd-majority" } else { "etcd-minority" }.into(),
        stall_wal_writer: None,
        down_for: if majority { MAJORITY_DOWN } else { OUTAGE },
        break_it: down.iter().map(|member| command(&["stop", member])).collect(),
        heal: down.iter().map(|member| command(&["start", member])).collect(),
    };
    let measured = under_load(lab, StrategyName::Etcd, 4, &outage).await?;
    let unavailable = measured.history.by_status().get(&503).copied().unwrap_or(0);
    let (verdict, as_expected) = if majority {
        (
            "refused: no majority, so no lease and no lock (503 naming etcd), nothing written".to_owned(),
            measured.booked_during == 0 && unavailable > 0,
        )
    } else {
        ("kept booking: two of three members are a majority, and any member forwards a write to the leader".to_owned(), measured.booked_during > 0)
    };
    Ok(vec![Row {
        strategy: StrategyName::Etcd.to_string(),
        injected: format!(
            "{} stopped {} s under 4 clients{}",
            down.join(" and "),
            outage.down_for.as_secs(),
            if majority { " (the leader among them)" } else { "" }
        ),
        clients_told: format!("{}; {} booked while down", measured.statuses(), measured.booked_during),
        database_holds: measured.audit.clone(),
        verdict: format!("{verdict}; {}", measured.recovery()),
        as_taught: as_expected && measured.server_errors() == 0 && measured.recovered.is_some() && measured.clean,
    }])
}

/// `etcd-leader`: the leader killed (SIGKILL) under load. The other two
/// elect a new one; bookings pause for the election and resume before the
/// old leader is back.
pub async fn leader_killed(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let leader = lab.control.etcd_leader()?;
    let outage = Outage {
        what: "etcd-leader".into(),
        stall_wal_writer: None,
        down_for: OUTAGE,
        break_it: vec![command(&["kill", &leader])],
        heal: vec![command(&["start", &leader])],
    };
    let measured = under_load(lab, StrategyName::Etcd, 4, &outage).await?;
    let new_leader = lab.control.etcd_leader().unwrap_or_else(|_| "none".into());
    Ok(vec![Row {
        strategy: StrategyName::Etcd.to_string(),
        injected: format!("{leader} (the leader) killed with SIGKILL under 4 clients; started again after 2 s"),
        clients_told: format!(
            "{}; {} answers failed during the election, {} booked before the old leader was back",
            measured.statuses(),
            measured.failed_during,
            measured.booked_during
        ),
        database_holds: measured.audit.clone(),
        verdict: format!("a new leader ({new_leader} now leads) took over and bookings resumed; {}", measured.recovery()),
        as_taught: measured.booked_during > 0 && measured.server_errors() == 0 && measured.recovered.is_some() && measured.clean,
    }])
}

/// `lock-restart`: the lock service restarted with every seat's lock state:
/// the main Redis (empty afterwards) under `fenced`, all three etcd members
/// under `etcd`. Then the same seats are booked again. Tokens must keep
/// rising, and no seat may refuse a new holder for a token it saw before.
pub async fn lock_service_restart(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for strategy in [StrategyName::Fenced, StrategyName::Etcd] {
        settled(|| lab.lb.set_strategy(strategy.as_str())).await?;
        let event = create_event(&lab.lb, &format!("fault lab: lock-restart {strategy}")).await?;
        let seats: Vec<String> = (1..=8).map(|n| format!("A{n}")).collect();
        let before = book_all(lab, event, &seats, "before").await?;
        let what = restart_lock_service(lab, strategy)?;
        // Every replica finds the service again within a few calls; each is
        // asked on its own port, since nginx would bring the probe to one.
        let recovered = Instant::now();
        for replica in &lab.replicas {
            while settled(|| replica.book(event, "B1", "probe")).await.map(|answer| answer.status.as_u16()).unwrap_or(0) == 503
                && recovered.elapsed() < Duration::from_secs(15)
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let after = book_all(lab, event, &seats, "after").await?;
        let reasons: Vec<&str> = after.iter().map(|answer| answer.body["reason"].as_str().unwrap_or("?")).collect();
        let stale = reasons.iter().filter(|reason| **reason == "stale_token").count();
        let risen = before.iter().zip(&after).filter(|(was, now)| token(now) > token(was)).count();
        let (first_before, last_before) = (token(&before[0]), before.iter().map(token).max().unwrap_or(0));
        let first_after = token(&after[0]);
        let verdict = match strategy {
            StrategyName::Fenced => format!(
                "each seat's counter was gone with Redis' memory and was seeded from the token on the seat row, so A1 \
                 went from {first_before} to {first_after}. Without the seed it would count from 1 again, and every seat \
                 stamped higher would refuse new holders with stale_token until the count caught up: safe, but stuck"
            ),
            _ => format!(
                "one revision for the whole cluster, kept in the Raft log on disk: the last token before was \
                 {last_before}, the first after {first_after}; nothing to repair"
            ),
        };
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: what,
            clients_told: format!(
                "before: {} confirmed; after, new customers on the same seats: {} seat_taken, {stale} stale_token",
                before.iter().filter(|answer| answer.outcome() == "confirmed").count(),
                reasons.iter().filter(|reason| **reason == "seat_taken").count()
            ),
            database_holds: format!("{risen} of {} seats saw a larger token after the restart", seats.len()),
            verdict,
            as_taught: stale == 0 && risen == seats.len() && reasons.iter().all(|reason| *reason == "seat_taken"),
        });
        lab.clean_up(event).await?;
    }
    Ok(rows)
}

/// Books each seat once, for a customer named after `round`, one at a time.
async fn book_all(lab: &Lab, event: i64, seats: &[String], round: &str) -> anyhow::Result<Vec<Answer>> {
    let mut answers = Vec::new();
    for seat in seats {
        answers.push(lab.lb.book(event, seat, &format!("{round}-{seat}")).await?);
    }
    Ok(answers)
}

fn token(answer: &Answer) -> i64 {
    answer.body["fencing_token"].as_i64().unwrap_or(0)
}

fn members(lab: &Lab) -> anyhow::Result<Vec<String>> {
    let members: Vec<String> = lab.control.etcd_members()?.into_iter().map(|(name, _)| name).collect();
    anyhow::ensure!(members.len() >= 3, "the etcd scenarios need three etcd members; cluster.sh status lists {members:?}");
    Ok(members)
}

/// Stops and starts the lock service of `strategy`; what was restarted.
fn restart_lock_service(lab: &Lab, strategy: StrategyName) -> anyhow::Result<String> {
    if strategy == StrategyName::Etcd {
        let members = members(lab)?;
        for member in &members {
            lab.control.run(&["stop", member])?;
        }
        for member in &members {
            lab.control.run(&["start", member])?;
        }
        return Ok(format!("all {} etcd members stopped, then started", members.len()));
    }
    let main = lab.control.main_redis()?;
    lab.control.run(&["stop", &main])?;
    lab.control.run(&["start", &main])?;
    Ok(format!("{main} (the main Redis, no persistence) stopped, then started empty"))
}
