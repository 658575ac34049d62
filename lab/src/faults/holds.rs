//! Holds under faults (see `docs/holds.md`):
//! - `hold-expiry`: a payment that lands just after its hold expired, while
//!   another customer has taken the seat meanwhile;
//! - `hold-replica-crash`: the replica that wrote a hold is killed before
//!   the customer confirms;
//! - `flash-sale-postgres-restart`: Postgres stopped in the middle of a
//!   flash sale.

use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use reqwest::StatusCode;

use super::{Lab, Row};
use crate::client::Answer;
use crate::flash_sale;
use crate::load::create_event;
use booking_server::domain::StrategyName;

/// The hold `hold-expiry` takes, and how long its customer's payment takes.
const TTL: Duration = Duration::from_millis(1000);
const PAYMENT: Duration = Duration::from_millis(1800);
/// How long `flash-sale-postgres-restart` keeps Postgres down, and when.
const OUTAGE: Duration = Duration::from_secs(3);
const OUTAGE_AFTER: Duration = Duration::from_millis(1500);

fn told(answer: &Answer) -> String {
    match answer.body["reason"].as_str() {
        Some(reason) => format!("{} {reason}", answer.status.as_u16()),
        None => format!("{} {}", answer.status.as_u16(), answer.body["status"].as_str().unwrap_or("?")),
    }
}

fn hold_id(answer: &Answer) -> anyhow::Result<i64> {
    anyhow::ensure!(answer.status == StatusCode::CREATED, "the hold was not granted: {}", answer.body);
    answer.body["hold_id"].as_i64().context("a granted hold has an id")
}

/// Who owns the seat now, by the event's holders.
async fn owners(lab: &Lab, event: i64, seat: &str) -> anyhow::Result<Vec<String>> {
    let answer = lab.lb.get(&format!("/events/{event}")).await?;
    Ok(answer["holders"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|holder| holder["seat_number"] == seat)
        .filter_map(|holder| holder["customer_id"].as_str().map(str::to_owned))
        .collect())
}

/// Broken invariants the audit finds in the event (expected ones aside).
async fn broken(lab: &Lab, event: i64) -> anyhow::Result<Vec<String>> {
    let findings = lab.audit(event, &super::history::History::default()).await?;
    Ok(findings.iter().filter(|finding| !finding.expected).map(|finding| format!("{:?} {}", finding.kind, finding.seat_number)).collect())
}

/// Audits the scenario's event, notes what the audit found on the last
/// row, and deletes the event.
async fn finish(lab: &Lab, event: i64, mut rows: Vec<Row>) -> anyhow::Result<Vec<Row>> {
    let broken = broken(lab, event).await?;
    if let Some(last) = rows.last_mut() {
        last.database_holds = format!("{}; {}", last.database_holds, audit_says(&broken));
        last.as_taught &= broken.is_empty();
    }
    lab.clean_up(event).await?;
    Ok(rows)
}

fn owned(seat: &str, owners: &[String]) -> String {
    format!("{seat} owned by {}", if owners.is_empty() { "nobody".to_owned() } else { owners.join(", ") })
}

fn audit_says(broken: &[String]) -> String {
    if broken.is_empty() { "audit: clean".to_owned() } else { format!("audit: {}", broken.join(", ")) }
}

/// `hold-expiry`, for every strategy: alice holds a seat for 1 s through
/// replica-1 and pays for 1.8 s; meanwhile, her hold expired, bob holds the
/// seat through replica-2; then alice's payment lands through replica-3.
pub async fn expiry(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(lab.replicas.len() >= 3, "hold-expiry needs three replicas: scripts/cluster.sh up 3");
    let event = create_event(&lab.lb, "fault lab: hold-expiry").await?;
    let mut rows = Vec::new();
    for (index, strategy) in StrategyName::ALL.into_iter().enumerate() {
        lab.lb.set_strategy(strategy.as_str()).await?;
        let seat = crate::load::seat_name(index, 10, 10);
        let alice = lab.replicas[0].hold(event, &seat, "alice", TTL.as_millis() as u64).await?;
        let alice_hold = hold_id(&alice)?;
        tokio::time::sleep(PAYMENT).await;
        let bob = lab.replicas[1].hold(event, &seat, "bob", 60_000).await?;
        let bob_hold = hold_id(&bob).context("bob's hold (alice's had expired, so the seat was free)")?;
        let late = lab.replicas[2].confirm_hold(alice_hold, &format!("alice-{alice_hold}")).await?;
        let on_time = lab.lb.confirm_hold(bob_hold, &format!("bob-{bob_hold}")).await?;
        let owners = owners(lab, event, &seat).await?;
        let as_taught = late.status == StatusCode::GONE && on_time.status == StatusCode::OK && owners == ["bob"];
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("alice's payment took {} ms; her hold lasted {} ms", PAYMENT.as_millis(), TTL.as_millis()),
            clients_told: format!("alice (late): {}; bob: {}", told(&late), told(&on_time)),
            database_holds: owned(&seat, &owners),
            verdict: if as_taught {
                "refused the late payment: Postgres' now(), read in the confirm's transaction, said the hold had expired".to_owned()
            } else {
                "the late payment was not refused as it should be".to_owned()
            },
            as_taught,
        });
    }
    finish(lab, event, rows).await
}

/// `hold-replica-crash`, for each safe strategy: a hold taken through
/// replica-2, which is then killed (SIGKILL) before the customer confirms
/// through nginx, twice with one key. The hold lives in Postgres, so the
/// confirm books on another replica, once.
pub async fn replica_crash(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(lab.replicas.len() >= 2, "hold-replica-crash needs two replicas: scripts/cluster.sh up 3");
    let event = create_event(&lab.lb, "fault lab: hold-replica-crash").await?;
    let mut rows = Vec::new();
    for (index, strategy) in StrategyName::SAFE.into_iter().enumerate() {
        lab.lb.set_strategy(strategy.as_str()).await?;
        let seat = crate::load::seat_name(index, 10, 10);
        let held = lab.replicas[1].hold(event, &seat, "carol", 60_000).await?;
        let hold = hold_id(&held)?;
        let writer = held.instance.clone().unwrap_or_default();
        lab.control.run(&["kill", "replica-2"])?;
        let killed = lab.replicas[1].get("/health").await.is_err();
        let key = format!("carol-{hold}");
        let first = lab.lb.confirm_hold(hold, &key).await?;
        let again = lab.lb.confirm_hold(hold, &key).await?;
        lab.control.run(&["up"])?;
        let owners = owners(lab, event, &seat).await?;
        let same = first.body["booking_id"] == again.body["booking_id"];
        let as_taught = killed && first.status == StatusCode::OK && again.status == StatusCode::OK && same && owners == ["carol"];
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!("{writer} wrote the hold, then was killed (SIGKILL){}", if killed { "" } else { " (it still answered!)" }),
            clients_told: format!(
                "confirm: {} by {}; again with the key: {} (booking {})",
                told(&first),
                first.instance.as_deref().unwrap_or("?"),
                told(&again),
                again.body["booking_id"]
            ),
            database_holds: owned(&seat, &owners),
            verdict: if as_taught {
                "the hold outlived its replica: another replica confirmed it, once".to_owned()
            } else {
                "the hold did not survive its replica as it should".to_owned()
            },
            as_taught,
        });
    }
    finish(lab, event, rows).await
}

/// `flash-sale-postgres-restart`, under `pessimistic` and `optimistic`: a
/// flash sale with Postgres stopped for 3 s, 1.5 s in. Answers must be
/// 503 (never 500) while it is down, no acknowledged booking may be lost,
/// and the sale must sell out once it is back.
pub async fn flash_sale_postgres_restart(lab: &Lab) -> anyhow::Result<Vec<Row>> {
    let settings = flash_sale::Settings {
        customers: 300,
        rows: 4,
        seats_per_row: 10,
        ttl: Duration::from_millis(3000),
        abandon: 0.2,
        pay_min: Duration::from_millis(100),
        pay_max: Duration::from_millis(1500),
        limit: Duration::from_secs(60),
    };
    let mut rows = Vec::new();
    for strategy in [StrategyName::Pessimistic, StrategyName::Optimistic] {
        let outage = {
            let control = lab.control.clone();
            tokio::spawn(async move {
                tokio::time::sleep(OUTAGE_AFTER).await;
                control.run(&["stop", "postgres"])?;
                tokio::time::sleep(OUTAGE).await;
                control.run(&["start", "postgres"]).map(|_| ())
            })
        };
        let (row, event) = flash_sale::sale(&lab.lb, strategy, &settings, &ProgressBar::hidden()).await?;
        outage.await.context("the outage task failed")??;
        let broken = broken(lab, event).await?;
        // The 503s prove the outage landed inside the sale.
        let as_taught = row.survived() && row.unavailable > 0 && row.sold == row.seats && broken.is_empty();
        rows.push(Row {
            strategy: strategy.to_string(),
            injected: format!(
                "Postgres stopped {} s, {} ms into a sale of {} seats to {} customers",
                OUTAGE.as_secs(),
                OUTAGE_AFTER.as_millis(),
                row.seats,
                row.customers
            ),
            clients_told: format!(
                "{} holds, {} confirmed, {} late; {} answers 503, {} anything else{}",
                row.holds,
                row.confirmed,
                row.late,
                row.unavailable,
                row.errors,
                if row.error_kinds.is_empty() { String::new() } else { format!(" ({:?})", row.error_kinds) }
            ),
            database_holds: format!(
                "{}/{} sold, {} double bookings, {} confirmed bookings lost, {} unbacked; {}",
                row.sold,
                row.seats,
                row.double_bookings,
                row.lost_bookings,
                row.unbacked,
                audit_says(&broken)
            ),
            verdict: if as_taught {
                "503 while the database was down, never 500; nothing acknowledged lost; sold out once it was back".to_owned()
            } else {
                "the sale did not ride out the outage as it should".to_owned()
            },
            as_taught,
        });
        lab.clean_up(event).await?;
    }
    Ok(rows)
}
