//! The feed: a bounded publish queue in front of Redis, and a broadcast
//! channel behind the replica's one subscription.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Change;
use crate::cluster::listener::subscribe;

/// Changes waiting to be published; past it, a change is dropped (and pages
/// that missed it resync on their next reconnect or reset).
const PUBLISH_QUEUE: usize = 4096;
/// Changes a stream may fall behind before it is told to resync.
const STREAM_BACKLOG: usize = 1024;
/// The most changes one published message carries.
const PUBLISH_BATCH: usize = 256;
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// What a stream receives.
#[derive(Debug, Clone)]
pub enum Update {
    Change(Arc<Change>),
    /// Changes may have been missed: reload the event.
    Resync,
}

/// This replica's end of the live seat feed. Clones are handles to the
/// same queue, channel and stream limit.
#[derive(Clone)]
pub struct Feed {
    queue: mpsc::Sender<Change>,
    updates: broadcast::Sender<Update>,
    streams: Arc<Semaphore>,
    max_streams: usize,
    /// Fires at shutdown, so that open streams end and the server can stop.
    pub shutdown: CancellationToken,
}

impl Feed {
    /// The feed, and the queue its publisher task drains.
    pub fn new(max_streams: usize, shutdown: CancellationToken) -> (Self, mpsc::Receiver<Change>) {
        let (queue, pending) = mpsc::channel(PUBLISH_QUEUE);
        let (updates, _) = broadcast::channel(STREAM_BACKLOG);
        let feed = Self { queue, updates, streams: Arc::new(Semaphore::new(max_streams)), max_streams, shutdown };
        (feed, pending)
    }

    /// Hands a change to the publisher without waiting.
    pub fn publish(&self, change: Change) {
        if let Err(mpsc::error::TrySendError::Full(change)) = self.queue.try_send(change) {
            tracing::warn!(event_id = change.event_id(), "live seat feed queue is full; a change was dropped");
        }
    }

    /// A new stream's receiver and its place among this replica's streams;
    /// `None` when every place is taken.
    pub fn subscribe(&self) -> Option<(broadcast::Receiver<Update>, OwnedSemaphorePermit)> {
        let permit = self.streams.clone().try_acquire_owned().ok()?;
        Some((self.updates.subscribe(), permit))
    }

    pub fn max_streams(&self) -> usize {
        self.max_streams
    }

    /// A sender for the subscription loop.
    pub fn updates(&self) -> broadcast::Sender<Update> {
        self.updates.clone()
    }
}

/// Publishes queued changes until `cancel` fires. A Redis outage costs the
/// changes made during it (pages resync afterwards), never a booking.
///
/// Whatever queued up while the last message was on its way goes out as one
/// message: under load, one PUBLISH (and one receive on every replica)
/// carries many bookings instead of one each.
pub async fn publish_loop(mut redis: ConnectionManager, channel: String, mut pending: mpsc::Receiver<Change>, cancel: CancellationToken) {
    let mut failing = false;
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        batch.clear();
        tokio::select! {
            _ = cancel.cancelled() => return,
            received = pending.recv_many(&mut batch, PUBLISH_BATCH) => if received == 0 { return },
        }
        let payload = match serde_json::to_string(&batch) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::warn!(%error, "cannot encode seat changes");
                continue;
            }
        };
        match redis.publish::<_, _, i64>(&channel, payload).await {
            Ok(_) if failing => {
                tracing::info!("live seat feed publishing again");
                failing = false;
            }
            Ok(_) => {}
            Err(error) if !failing => {
                tracing::warn!(%error, "cannot publish seat changes; pages will resync when Redis is back");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Holds this replica's subscription until `cancel` fires, resubscribing
/// after every loss and telling the streams to resync each time.
pub async fn subscribe_loop(client: redis::Client, channel: String, updates: broadcast::Sender<Update>, cancel: CancellationToken) {
    let mut outage_reported = false;
    while !cancel.is_cancelled() {
        match subscribe(&client, &channel).await {
            Ok(pubsub) => {
                if outage_reported {
                    tracing::info!("live seat feed resubscribed");
                }
                let _ = updates.send(Update::Resync);
                let mut messages = pubsub.into_on_message();
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        message = messages.next() => match message {
                            // With no stream open on this replica, nobody would read the changes.
                            Some(_) if updates.receiver_count() == 0 => {}
                            Some(message) => match serde_json::from_slice::<Vec<Change>>(message.get_payload_bytes()) {
                                Ok(changes) => for change in changes {
                                    let _ = updates.send(Update::Change(Arc::new(change)));
                                },
                                Err(error) => tracing::warn!(%error, "ignoring a malformed seat change"),
                            },
                            None => break,
                        },
                    }
                }
                tracing::warn!("live seat feed lost its subscription; resubscribing");
                outage_reported = true;
            }
            Err(error) if !outage_reported => {
                tracing::warn!(%error, "live seat feed cannot subscribe; retrying quietly");
                outage_reported = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}
