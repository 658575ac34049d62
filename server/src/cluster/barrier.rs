//! The switch barrier: a strategy change (or a reset) that no booking can
//! straddle.
//!
//! A booking under `distributed` takes a Redis lock; one under `pessimistic`
//! takes a row lock; neither sees the other. So if the cluster switched while
//! bookings were in flight, an old-strategy booking and a new-strategy one
//! could both take the same seat. A change of protocol needs a barrier:
//!
//! 1. The coordinator (the replica that got `POST /admin/strategy`) takes the
//!    cluster's switch lock and publishes `prepare`.
//! 2. Every replica closes its booking [`Gate`]: new bookings queue, in-flight
//!    ones finish. Then it acknowledges (`drained`) in Redis.
//! 3. Once every live replica has acknowledged, or the timeout has passed, the
//!    coordinator bumps the epoch in Postgres (with the change's own database
//!    work, such as a reset, in the same transaction) and publishes the new
//!    epoch. Replicas apply it, reopen, and report how long bookings paused.
//!
//! A replica that did not acknowledge (paused, partitioned, deaf to pub/sub)
//! does not hold the cluster up: the switch goes ahead without it. It cannot
//! book under its old strategy afterwards, because every booking's write
//! checks its epoch against the one in Postgres, in the same transaction
//! ([`crate::storage::booking::commit_booking`]). Its first such write is
//! refused `stale_strategy`, and it catches up at once. That check, not the
//! gate, is what makes the switch safe; the gate makes it cheap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use super::ActiveStrategy;
use super::gate::{Gate, Pass};
use super::heartbeat::live_replicas;
use super::messages::Message;
use crate::domain::{Applied, StrategyName};
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::storage::epoch;
use crate::redis_ops::release_if_owner;

/// How often the coordinator looks for acknowledgements.
const POLL: Duration = Duration::from_millis(2);
/// Acknowledgements are kept this long, for a late reader.
const ACK_TTL_SECS: i64 = 60;
/// The most bookings whose pauses one replica reports per switch.
const MAX_REPORTED_WAITS: usize = 10_000;

/// This replica's side of the barrier, and the coordinator for the changes
/// it is asked to make.
pub struct Barrier {
    gate: Gate,
    active: Arc<ActiveStrategy>,
    db: PgPool,
    redis: ConnectionManager,
    keys: Keys,
    instance_id: String,
    heartbeat_interval: Duration,
    /// How long a coordinator waits for each phase, and a replica for its
    /// in-flight bookings to finish.
    timeout: Duration,
    /// The id of the last switch announced as aborted.
    aborted: watch::Sender<String>,
}

/// One replica's account of a switch.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplicaPause {
    pub instance: String,
    /// From `prepare` until its in-flight bookings had finished.
    pub drained_ms: f64,
    /// How long its gate then stayed closed.
    pub closed_ms: f64,
    /// Bookings that arrived while the gate was closing or closed.
    pub paused_requests: usize,
    /// How long each of them waited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waits_ms: Vec<f64>,
}

/// How long bookings waited at the gates, over every replica.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PauseSummary {
    pub paused_requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a change through the barrier did.
#[derive(Debug, Clone)]
pub struct Report {
    pub old: Applied,
    pub new: Applied,
    /// Replicas that drained and applied the new epoch.
    pub switched: Vec<String>,
    /// Live replicas that did not acknowledge in time; the change went ahead
    /// without them, and their bookings are refused until they catch up.
    pub lagging: Vec<String>,
    pub pause: PauseSummary,
    pub replicas: Vec<ReplicaPause>,
    /// The whole change, lock to last acknowledgement.
    pub took_ms: f64,
}

impl Barrier {
    pub fn new(
        active: Arc<ActiveStrategy>,
        db: PgPool,
        redis: ConnectionManager,
        keys: Keys,
        instance_id: String,
        heartbeat_interval: Duration,
        timeout: Duration,
    ) -> Self {
        Self {
            gate: Gate::default(),
            active,
            db,
            redis,
            keys,
            instance_id,
            heartbeat_interval,
            timeout,
            aborted: watch::Sender::new(String::new()),
        }
    }

    /// Lets a booking in once no switch is under way on this replica.
    pub async fn enter(&self) -> Pass {
        self.gate.enter().await
    }

    /// `prepare`: close the gate, drain, acknowledge, then hold the gate
    /// closed until the switch commits or aborts (or a coordinator that died
    /// leaves it hanging past two timeouts, when it catches up from Postgres).
    pub(crate) async fn on_prepare(self: Arc<Self>, switch_id: String, from_epoch: u64) {
        let started = Instant::now();
        let Ok(closed) = tokio::time::timeout(self.timeout, self.gate.close()).await else {
            tracing::warn!(switch_id, "in-flight bookings did not finish in time; not acknowledging this switch");
            return;
        };
        let drained = started.elapsed();
        let acks = self.keys.switch_acks(&switch_id);
        if let Err(error) = self.acknowledge(&acks, &format!("drained:{}", self.instance_id), &drained.as_secs_f64().to_string()).await {
            tracing::warn!(switch_id, %error, "could not acknowledge the switch");
        }

        let mut applied = self.active.subscribe();
        let mut aborted = self.aborted.subscribe();
        let outcome = tokio::time::timeout(self.timeout * 2, async {
            tokio::select! {
                _ = applied.wait_for(|applied| applied.epoch > from_epoch) => {}
                _ = aborted.wait_for(|aborted| *aborted == switch_id) => {}
            }
        })
        .await;
        if outcome.is_err() {
            tracing::warn!(switch_id, "the switch neither committed nor aborted in time; reopening");
            match epoch::load(&self.db).await {
                Ok(current) => {
                    self.active.apply(current);
                }
                Err(error) => {
                    tracing::warn!(%error, "could not read the epoch; bookings will catch up on their first write")
                }
            }
        }
        let pauses = closed.open();
        let report = ReplicaPause {
            instance: self.instance_id.clone(),
            drained_ms: millis(drained),
            closed_ms: millis(pauses.closed),
            paused_requests: pauses.waits.len(),
            waits_ms: pauses.waits.iter().take(MAX_REPORTED_WAITS).map(|wait| millis(*wait)).collect(),
        };
        let json = serde_json::to_string(&report).expect("a pause report serialises");
        if let Err(error) = self.acknowledge(&acks, &format!("applied:{}", self.instance_id), &json).await {
            tracing::warn!(switch_id, %error, "could not report the switch's pause");
        }
    }

    /// `abort`: the switch `switch_id` will not happen.
    pub(crate) fn on_abort(&self, switch_id: String) {
        self.aborted.send_replace(switch_id);
    }

    async fn acknowledge(&self, key: &str, field: &str, value: &str) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        let _: () = redis::pipe().hset(key, field, value).expire(key, ACK_TTL_SECS).query_async(&mut redis).await?;
        Ok(())
    }

    /// Switches the cluster to `name`.
    pub async fn switch(&self, name: StrategyName) -> Result<Report> {
        self.change(|_| name, async |_: &mut PgConnection| Ok(())).await
    }

    /// Runs a cluster-wide change through the barrier. `next` names the
    /// strategy of the new epoch, from the current setting; `work` is the
    /// change's own database work, run in the transaction that bumps the
    /// epoch while every acknowledging replica's gate is closed.
    pub async fn change<W>(&self, next: impl FnOnce(Applied) -> StrategyName, work: W) -> Result<Report>
    where
        W: AsyncFnOnce(&mut PgConnection) -> Result<()>,
    {
        let started = Instant::now();
        let switch_id = uuid::Uuid::new_v4().simple().to_string();
        self.lock(&switch_id).await?;
        let result = self.change_locked(&switch_id, started, next, work).await;
        if result.is_err() {
            self.publish(&Message::Abort { switch_id: switch_id.clone() }).await.ok();
        }
        self.unlock(&switch_id).await;
        let report = result?;
        crate::metrics::switch_finished(if report.lagging.is_empty() { "complete" } else { "without_lagging" });
        Ok(report)
    }

    async fn change_locked<W>(
        &self,
        switch_id: &str,
        started: Instant,
        next: impl FnOnce(Applied) -> StrategyName,
        work: W,
    ) -> Result<Report>
    where
        W: AsyncFnOnce(&mut PgConnection) -> Result<()>,
    {
        let old = epoch::load(&self.db).await?;
        let mut expected: Vec<String> =
            live_replicas(&self.redis, &self.keys, self.heartbeat_interval).await?.into_iter().map(|replica| replica.instance_id).collect();
        if !expected.contains(&self.instance_id) {
            expected.push(self.instance_id.clone());
        }
        expected.sort();
        self.publish(&Message::Prepare { switch_id: switch_id.to_owned(), from_epoch: old.epoch }).await?;
        let acks_key = self.keys.switch_acks(switch_id);
        let drained = self.wait_for_acks(&acks_key, "drained:", &expected).await?;

        let mut tx = self.db.begin().await?;
        work(&mut *tx).await?;
        let bumped = epoch::bump(&mut tx, old.epoch, next(old)).await.map_err(|error| match error {
            sqlx::Error::Database(ref db) if db.code().as_deref() == Some("55P03") => Error::Unavailable {
                what: "strategy switch",
                detail: format!(
                    "a booking transaction held the epoch row for {} ms (is a replica paused inside a write?); \
                     the switch was abandoned and {} stays in force everywhere",
                    epoch::BUMP_LOCK_TIMEOUT_MS,
                    old.name
                ),
            },
            other => other.into(),
        })?;
        let Some(new) = bumped else {
            return Err(Error::Conflict(format!("the cluster left epoch {} while this switch was preparing; try again", old.epoch)));
        };
        tx.commit().await?;
        Ok(self.after_commit(started, old, new, expected, &acks_key, drained).await)
    }

    /// Announces the committed epoch and collects the replicas' reports. It
    /// cannot fail: the switch has happened, and a replica that does not hear
    /// of it is refused its next old-epoch write and catches up then.
    async fn after_commit(
        &self,
        started: Instant,
        old: Applied,
        new: Applied,
        expected: Vec<String>,
        acks_key: &str,
        drained: HashMap<String, String>,
    ) -> Report {
        self.active.apply(new);
        if let Err(error) = self.publish(&Message::Commit(new)).await {
            tracing::warn!(%error, "could not announce the new epoch; replicas catch up on their next write");
        }
        let acked: Vec<String> = drained.keys().cloned().collect();
        let applied = self.wait_for_acks(acks_key, "applied:", &acked).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "could not read the replicas' reports of the switch");
            HashMap::new()
        });
        let mut replicas: Vec<ReplicaPause> = applied.values().filter_map(|json| serde_json::from_str(json).ok()).collect();
        replicas.sort_by(|a, b| a.instance.cmp(&b.instance));
        let switched: Vec<String> = replicas.iter().map(|replica| replica.instance.clone()).collect();
        let lagging = expected.into_iter().filter(|instance| !switched.contains(instance)).collect();
        Report {
            old,
            new,
            switched,
            lagging,
            pause: summarise(&replicas),
            replicas: replicas.into_iter().map(|replica| ReplicaPause { waits_ms: Vec::new(), ..replica }).collect(),
            took_ms: millis(started.elapsed()),
        }
    }

    /// Polls the acknowledgements until every one of `expected` has given its
    /// `phase`, or the timeout passes; returns those that did, by instance.
    async fn wait_for_acks(&self, key: &str, phase: &str, expected: &[String]) -> Result<HashMap<String, String>> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let all: HashMap<String, String> = self.redis.clone().hgetall(key).await?;
            let acks: HashMap<String, String> = all
                .into_iter()
                .filter_map(|(field, value)| field.strip_prefix(phase).map(|instance| (instance.to_owned(), value)))
                .collect();
            if expected.iter().all(|instance| acks.contains_key(instance)) || Instant::now() >= deadline {
                return Ok(acks);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One change at a time: waits up to the timeout for a running one.
    async fn lock(&self, switch_id: &str) -> Result<()> {
        let ttl = (self.timeout * 4 + Duration::from_millis(epoch::BUMP_LOCK_TIMEOUT_MS)).as_millis() as u64;
        let deadline = Instant::now() + self.timeout;
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(self.keys.switch_lock())
                .arg(switch_id)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query_async(&mut self.redis.clone())
                .await?;
            if taken.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Conflict("another strategy switch or reset is in progress; try again".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn unlock(&self, switch_id: &str) {
        if let Err(error) = release_if_owner(&mut self.redis.clone(), &self.keys.switch_lock(), switch_id).await {
            tracing::warn!(%error, "could not release the switch lock; it expires with its TTL");
        }
    }

    async fn publish(&self, message: &Message) -> redis::RedisResult<()> {
        let _: i64 = self.redis.clone().publish(self.keys.strategy_channel(), message.encode()).await?;
        Ok(())
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// p50, p99 and max of every paused booking's wait, nearest rank.
fn summarise(replicas: &[ReplicaPause]) -> PauseSummary {
    let mut waits: Vec<f64> = replicas.iter().flat_map(|replica| replica.waits_ms.iter().copied()).collect();
    if waits.is_empty() {
        return PauseSummary::default();
    }
    waits.sort_by(f64::total_cmp);
    let rank = |q: f64| waits[((q * waits.len() as f64).ceil() as usize).clamp(1, waits.len()) - 1];
    PauseSummary { paused_requests: waits.len(), p50_ms: rank(0.5), p99_ms: rank(0.99), max_ms: waits[waits.len() - 1] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(waits_ms: Vec<f64>) -> ReplicaPause {
        ReplicaPause { instance: "r".into(), drained_ms: 0.0, closed_ms: 0.0, paused_requests: waits_ms.len(), waits_ms }
    }

    #[test]
    fn pauses_are_summarised_over_every_replica_by_nearest_rank() {
        let summary = summarise(&[replica((1..=50).map(f64::from).collect()), replica((51..=100).map(f64::from).collect())]);
        assert_eq!(summary.paused_requests, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(summarise(&[replica(vec![])]).paused_requests, 0);
    }
}
