//! Hears the cluster channel and acts on it: prepares for switches, applies
//! committed epochs, reopens on aborts.
//!
//! Pub/sub drops messages while disconnected, so after every
//! (re)subscription the listener also reads the epoch from Postgres: a
//! replica that missed a change catches up as soon as it is back. (Missing a
//! `prepare` is safe: the replica's old-epoch writes are refused, see
//! [`super::barrier`].)

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::ActiveStrategy;
use super::barrier::Barrier;
use super::messages::Message;
use crate::storage::epoch;

const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// A pub/sub connection subscribed to `channel`. The cluster channel's is
/// made before the replica serves, so that it hears every switch from its
/// first request on; the live seat feed ([`crate::live`]) uses it too.
pub async fn subscribe(client: &redis::Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// What the listener acts on.
pub struct Listener {
    pub client: redis::Client,
    pub channel: String,
    pub db: PgPool,
    pub active: Arc<ActiveStrategy>,
    pub barrier: Arc<Barrier>,
}

impl Listener {
    /// Runs until `cancel` fires, starting with the subscription `first`.
    pub async fn run(self, first: redis::aio::PubSub, cancel: CancellationToken) {
        let mut next = Some(first);
        let mut outage_reported = false;
        while !cancel.is_cancelled() {
            let subscribed = match next.take() {
                Some(pubsub) => Ok(pubsub),
                None => subscribe(&self.client, &self.channel).await,
            };
            match subscribed {
                Ok(pubsub) => {
                    if outage_reported {
                        tracing::info!("cluster listener reconnected");
                    }
                    self.catch_up().await;
                    let mut messages = pubsub.into_on_message();
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            message = messages.next() => match message {
                                Some(message) => self.handle(&message.get_payload::<String>().unwrap_or_default()),
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("cluster listener lost its pub/sub connection; reconnecting");
                    outage_reported = true;
                }
                Err(error) => {
                    if !outage_reported {
                        tracing::warn!(%error, "cluster listener cannot subscribe; retrying quietly until it can");
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

    fn handle(&self, payload: &str) {
        match Message::parse(payload) {
            Some(Message::Prepare { switch_id, from_epoch }) => {
                tokio::spawn(self.barrier.clone().on_prepare(switch_id, from_epoch));
            }
            Some(Message::Abort { switch_id }) => self.barrier.on_abort(switch_id),
            Some(Message::Commit(applied)) => {
                self.active.apply(applied);
            }
            None => tracing::warn!(payload, "ignoring malformed cluster message"),
        }
    }

    async fn catch_up(&self) {
        match epoch::load(&self.db).await {
            Ok(current) => {
                self.active.apply(current);
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the cluster's epoch after subscribing")
            }
        }
    }
}
