//! `etcd`: the lock done right, by consensus. A lease is the TTL, and the
//! lock key's revision is the fencing token.
//!
//! etcd keeps its keys in a Raft log replicated to a majority of its members
//! before it answers, so a grant cannot vanish with one machine's memory the
//! way a Redis key can. Each seat's lock is one key, created in a transaction
//! only if it does not exist yet (`create_revision == 0`) and attached to a
//! lease of `LOCK_TTL_MS` (rounded up to whole seconds and raised to etcd's
//! minimum, [`MIN_LEASE`]): if the holder never comes back, the lease runs
//! out and etcd deletes the key. Releasing revokes the lease, which deletes
//! the key with it.
//!
//! The fencing token is the revision of the write that created the key.
//! etcd raises its revision by one for every write anywhere in the cluster
//! and keeps it across restarts of every member, so a later holder of a seat
//! always has a larger token, whatever happened in between: the seat row
//! refuses a holder whose lease lapsed (see
//! [`super::toolkit::Ctx::read_fence_hold_write`]), as it does for `fenced`,
//! without `fenced`'s counter that a Redis restart loses.
//!
//! (etcd's own Lock RPC queues waiters and blocks until the lock is free. The
//! lab tries for `LOCK_WAIT_MS` and then answers `lock_busy`, like its Redis
//! locks, so it uses the transaction that the Lock RPC is built on.) No
//! keep-alive renews the lease: a paused process could not renew it either,
//! and the lesson is what happens to a holder whose lease runs out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, DeleteOptions, PutOptions, Txn, TxnOp};

use super::lock::Lock;
use super::{Ctx, retry_until};
use crate::config::LockingConfig;
use crate::error::{Error, Result};
use crate::keys::Keys;

/// etcd's shortest lease: 1.5 × its election timeout, in whole seconds (2 s
/// at the default 1 s election timeout). etcd silently raises a shorter one.
pub(crate) const MIN_LEASE: Duration = Duration::from_secs(2);
/// How long one member may take to answer one call.
const CALL_TIMEOUT: Duration = Duration::from_millis(1000);

pub(crate) struct EtcdLock {
    /// One client per member, in `ETCD_ENDPOINTS` order.
    members: Vec<(String, Client)>,
    /// The member that answered last: calls start there.
    current: AtomicUsize,
    keys: Keys,
    lease: Duration,
    wait: Duration,
}

/// A held etcd lock: the lease it lives on, and its fencing token.
pub(crate) struct EtcdHold {
    lease: i64,
    token: i64,
}

impl EtcdLock {
    /// A client for each member at `endpoints`. They connect lazily: a replica
    /// starts while etcd is down, and `etcd` answers 503 until it is up.
    pub(crate) async fn connect(endpoints: &[String], keys: Keys, config: &LockingConfig) -> anyhow::Result<Self> {
        // `require_leader`: a member cut off from the majority fails at once
        // ("no leader") instead of holding the call until it times out.
        let options = ConnectOptions::new().with_connect_timeout(CALL_TIMEOUT).with_timeout(CALL_TIMEOUT).with_require_leader(true);
        let mut members = Vec::new();
        for endpoint in endpoints {
            let client = Client::connect([endpoint], Some(options.clone())).await.map_err(|error| anyhow::anyhow!("ETCD_ENDPOINTS: {endpoint}: {error}"))?;
            members.push((endpoint.clone(), client));
        }
        anyhow::ensure!(!members.is_empty(), "ETCD_ENDPOINTS names no etcd member");
        let lease = config.lock_ttl().as_secs() + u64::from(config.lock_ttl().subsec_nanos() > 0);
        let lease = Duration::from_secs(lease).max(MIN_LEASE);
        Ok(Self { members, current: AtomicUsize::new(0), keys, lease, wait: config.lock_wait() })
    }

    /// The lease a grant lives on.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// Runs one etcd call on the member that answered last, and on the next
    /// ones in turn when it cannot answer (down, cut off from the majority,
    /// or silent for [`CALL_TIMEOUT`]). Any member forwards a write to the
    /// leader, so one that answers is enough. When none does, the lock
    /// service is unavailable: a 503 that says what was being done and what
    /// each member said.
    async fn call<T, F, Fut>(&self, doing: &str, call: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let first = self.current.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        for step in 0..self.members.len() {
            let index = (first + step) % self.members.len();
            let (endpoint, client) = &self.members[index];
            match tokio::time::timeout(CALL_TIMEOUT, call(client.clone())).await {
                Ok(Ok(value)) => {
                    self.current.store(index, Ordering::Relaxed);
                    return Ok(value);
                }
                Ok(Err(error)) => failures.push(format!("{endpoint}: {}", short(&error))),
                Err(_) => failures.push(format!("{endpoint}: no answer within {} ms", CALL_TIMEOUT.as_millis())),
            }
        }
        Err(Error::Unavailable { what: "etcd", detail: format!("could not {doing}: no etcd member could ({})", failures.join("; ")) })
    }

    /// Revokes a lease, deleting the lock key attached to it; a failure is
    /// only logged (the lease runs out on its own).
    async fn revoke(&self, lease: i64) {
        if let Err(error) = self.call("revoke a lease", |mut client| async move { client.lease_revoke(lease).await }).await {
            tracing::warn!(lease, %error, "could not revoke the etcd lease; the lock expires with it");
        }
    }

    /// Deletes every lock key of the event.
    pub(crate) async fn clear(&self, event_id: i64) -> Result<()> {
        let prefix = self.keys.etcd_lock(event_id, "");
        let delete = |mut client: Client| {
            let prefix = prefix.clone();
            async move { client.delete(prefix, Some(DeleteOptions::new().with_prefix())).await }
        };
        match self.call("clear an event's locks", delete).await {
            Ok(_) => Ok(()),
            // Unlike Redis, etcd is only needed by one strategy: a reset
            // must not fail because it is down. Its leases free the keys.
            Err(error) => {
                tracing::warn!(%error, event_id, "could not clear the event's etcd locks; they expire with their leases");
                Ok(())
            }
        }
    }
}

impl Lock for EtcdLock {
    const KIND: &'static str = "etcd";
    type Held = EtcdHold;

    async fn acquire(&self, ctx: &Ctx<'_>) -> Result<Option<EtcdHold>> {
        let key = self.keys.etcd_lock(ctx.booking.event_id, &ctx.booking.seat_number);
        let ttl = self.lease.as_secs() as i64;
        let lease = self.call("grant a lease", |mut client| async move { client.lease_grant(ttl, None).await }).await?.id();
        let create_if_absent = Txn::new()
            .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key.as_str(), ctx.booking.instance_id.as_str(), Some(PutOptions::new().with_lease(lease)))]);
        let granted = retry_until(self.wait, || async {
            let response = self.call("take a lock", |mut client| {
                let txn = create_if_absent.clone();
                async move { client.txn(txn).await }
            })
            .await?;
            // The transaction's revision is the one that created the key.
            Ok(response.succeeded().then(|| response.header().map(|header| header.revision())).flatten())
        })
        .await;
        match granted {
            Ok(Some(token)) => Ok(Some(EtcdHold { lease, token })),
            Ok(None) => {
                self.revoke(lease).await;
                Ok(None)
            }
            Err(error) => {
                self.revoke(lease).await;
                Err(error)
            }
        }
    }

    fn token(held: &EtcdHold) -> Option<i64> {
        Some(held.token)
    }

    async fn release(&self, held: EtcdHold) {
        self.revoke(held.lease).await;
    }
}

/// What a member said, without the transport's nested error chain.
fn short(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => status.message().to_owned(),
        other => other.to_string(),
    }
}
