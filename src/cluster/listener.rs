//! Applies strategy changes announced by other replicas.
//!
//! Subscribes to the strategy channel and applies every newer announcement.
//! Pub/sub drops messages while disconnected, so after every (re)subscription
//! the listener also reads the stored setting: a replica that missed a change
//! catches up as soon as it is back, and a Redis that lost the setting gets
//! it back from the replica.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::ActiveStrategy;
use super::store::{StrategyStore, parse_announcement};

const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Runs until `cancel` fires.
pub async fn run(client: redis::Client, channel: String, store: StrategyStore, active: Arc<ActiveStrategy>, cancel: CancellationToken) {
    let mut outage_reported = false;
    while !cancel.is_cancelled() {
        match subscribe(&client, &channel).await {
            Ok(pubsub) => {
                if outage_reported {
                    tracing::info!("strategy listener reconnected");
                }
                catch_up(&store, &active).await;
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        message = messages.next() => match message {
                            Some(message) => {
                                let payload: String = message.get_payload().unwrap_or_default();
                                match parse_announcement(&payload) {
                                    Some(announced) => { active.apply(announced); }
                                    None => tracing::warn!(payload, "ignoring malformed strategy announcement"),
                                }
                            }
                            None => break,
                        },
                    }
                }
                tracing::warn!("strategy listener lost its pub/sub connection; reconnecting");
                outage_reported = true;
            }
            Err(error) => {
                if !outage_reported {
                    tracing::warn!(%error, "strategy listener cannot subscribe; retrying quietly until it can");
                    outage_reported = true;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

async fn catch_up(store: &StrategyStore, active: &ActiveStrategy) {
    // A Redis that lost the setting (restarted without persistence) gets
    // this replica's back, so the cluster's memory survives the restart.
    match store.seed(active.current()).await {
        Ok(stored) => {
            active.apply(stored);
        }
        Err(error) => tracing::warn!(%error, "could not read the stored strategy after subscribing"),
    }
}
