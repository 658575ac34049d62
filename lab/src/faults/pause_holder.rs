//! `pause-holder`: a replica frozen with SIGSTOP while it holds a seat, for
//! longer than the lock's TTL, while a customer on another replica books the
//! same seat. Then the frozen replica wakes up and finishes its booking.

use std::time::{Duration, Instant};

use anyhow::ensure;

use super::{Lab, Row};
use crate::load::create_event;
use booking_server::domain::StrategyName;
use crate::client::Answer;

/// How long the second customer's request has beyond one hold time, on the
/// running replica, before the frozen one is resumed: enough to finish its
/// own booking, unless a lock makes it wait for the frozen holder.
const SECOND_MARGIN: Duration = Duration::from_millis(300);
/// How many times a strategy's run is tried when the freeze lands too late.
const ATTEMPTS: usize = 3;
/// Longest any request of the scenario may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

fn told(answer: &anyhow::Result<Answer>) -> String {
    match answer {
        Ok(answer) => match answer.body["reason"].as_str() {
            Some(reason) => format!("{} {reason}", answer.status.as_u16()),
            None => format!("{} {}", answer.status.as_u16(), answer.body["status"].as_str().unwrap_or("?")),
        },
        Err(error) => format!("no answer ({error:#})"),
    }
}

fn booked(answer: &anyhow::Result<Answer>) -> bool {
    answer.as_ref().is_ok_and(|answer| matches!(answer.outcome(), "confirmed" | "double_booked"))
}

pub async fn run(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    ensure!(lab.replicas.len() >= 2, "pause-holder needs two replicas: scripts/cluster.sh up 3");
    let settings = lab.replicas[0].get("/admin/strategy").await?;
    let hold = Duration::from_millis(settings["hold_ms"].as_u64().unwrap_or(0));
    let redis_ttl = Duration::from_millis(settings["lock_ttl_ms"].as_u64().unwrap_or(5000));
    // etcd's lease is whole seconds, at least 2; its leader revokes an
    // expired lease within about half a second more.
    let etcd_lease = Duration::from_millis(settings["etcd_lease_ms"].as_u64().unwrap_or(2000)) + Duration::from_millis(800);
    ensure!(
        hold >= Duration::from_millis(200),
        "pause-holder freezes a replica in the middle of its hold, which is {} ms: start the cluster with a longer one \
         (scripts/cluster.sh down; HOLD_MS=400 LOCK_TTL_MS=1000 scripts/cluster.sh up)",
        hold.as_millis()
    );
    let event = create_event(&lab.lb, "fault lab: pause-holder").await?;
    let head_start = hold + SECOND_MARGIN;

    let mut rows = Vec::new();
    for (index, strategy) in StrategyName::ALL.into_iter().enumerate() {
        lab.lb.set_strategy(strategy.as_str()).await?;
        let ttl = if strategy == StrategyName::Etcd { etcd_lease } else { redis_ttl };
        let frozen_for = ttl + Duration::from_millis(200) + head_start;

        let mut attempt = 0;
        let (seat, holder) = loop {
            let seat = crate::load::seat_name(index + attempt * StrategyName::ALL.len(), 100, 200);
            let holder = tokio::spawn({
                let (client, seat) = (lab.replicas[0].clone(), seat.clone());
                async move { tokio::time::timeout(REQUEST_LIMIT, client.book(event, &seat, &format!("holder-{strategy}"))).await }
            });
            tokio::time::sleep(hold / 2).await;
            lab.control.run(&["pause", "replica-1"])?;
            let paused = Instant::now();
            // The freeze must land inside the hold, before the holder writes.
            // On a machine busy enough to delay the pause past the hold, the
            // seat is already booked: that run proves nothing, so it runs
            // again on a fresh seat, a bounded number of times.
            attempt += 1;
            if attempt < ATTEMPTS && lab.replicas[1].booked_by(event, &seat).await?.is_some() {
                lab.control.run(&["resume", "replica-1"])?;
                let _ = holder.await;
                continue;
            }
            tokio::time::sleep((ttl + Duration::from_millis(200)).saturating_sub(paused.elapsed())).await;
            break (seat, holder);
        };
        let second = tokio::spawn({
            let (client, seat) = (lab.replicas[1].clone(), seat.clone());
            async move {
                let sent = Instant::now();
                let answer = tokio::time::timeout(REQUEST_LIMIT, client.book(event, &seat, &format!("second-{strategy}"))).await;
                (answer, sent.elapsed())
            }
        });
        tokio::time::sleep(head_start).await;
        let resumed = lab.control.run(&["resume", "replica-1"]);
        let holder = holder.await?.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {REQUEST_LIMIT:?}")));
        let (second, second_took) = second.await?;
        let second = second.unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {REQUEST_LIMIT:?}")));
        resumed?;

        let holders = lab.lb.holders(event, &seat).await?;
        let (verdict, as_taught) = verdict(strategy, &holder, &second, holders, second_took);
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!(
                "replica-1 frozen {} ms holding {seat} ({} {} ms)",
                frozen_for.as_millis(),
                if strategy == StrategyName::Etcd { "lease + revocation" } else { "TTL" },
                ttl.as_millis()
            ),
            clients_told: format!("holder: {}; second: {} after {} ms", told(&holder), told(&second), second_took.as_millis()),
            database_holds: format!("{holders} holder(s)"),
            verdict,
            as_taught,
        });
    }
    lab.clean_up(event).await?;
    Ok(rows)
}

/// What happened, and whether the lesson says it should.
fn verdict(
    strategy: StrategyName,
    holder: &anyhow::Result<Answer>,
    second: &anyhow::Result<Answer>,
    holders: u64,
    second_took: Duration,
) -> (String, bool) {
    let refused_with = |answer: &anyhow::Result<Answer>| answer.as_ref().ok().and_then(|a| a.body["reason"].as_str().map(str::to_owned));
    match strategy {
        StrategyName::None | StrategyName::Mutex => {
            ("double-booked: nothing coordinates the two replicas".into(), holders == 2 && booked(holder) && booked(second))
        }
        StrategyName::Distributed | StrategyName::Redlock => (
            "double-booked: the lock expired while its holder was frozen, and nothing checked the late write".into(),
            holders == 2 && booked(holder) && booked(second),
        ),
        StrategyName::Fenced => (
            "safe: the frozen holder's write carried a stale fencing token and was refused".into(),
            holders == 1 && booked(second) && refused_with(holder).as_deref() == Some("stale_token"),
        ),
        StrategyName::Etcd => (
            "safe: the frozen holder's lease ran out; its token (the revision that created its lock key) was older than \
             the second holder's, and the seat refused it"
                .into(),
            holders == 1 && booked(second) && refused_with(holder).as_deref() == Some("stale_token"),
        ),
        StrategyName::Optimistic => (
            format!("safe: the version had moved, the late write was refused ({})", refused_with(holder).unwrap_or_default()),
            holders == 1 && booked(second) && refused_with(holder).is_some(),
        ),
        StrategyName::Pessimistic => (
            format!(
                "safe: the second customer waited {} ms on the frozen transaction's row lock, then was refused ({})",
                second_took.as_millis(),
                refused_with(second).unwrap_or_default()
            ),
            holders == 1 && booked(holder) && refused_with(second).is_some(),
        ),
    }
}
