//! Every Redis key and channel name, in one place.
//!
//! All names start with the configured prefix: replicas that share a prefix
//! form one cluster, and each test uses a prefix of its own.

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    /// Pub/sub channel of the switch barrier: `prepare`, `abort`, and
    /// `version:name` when a new epoch is committed.
    pub fn strategy_channel(&self) -> String {
        format!("{}strategy-changed", self.prefix)
    }

    /// The live seat feed's pub/sub channel (see [`crate::live`]).
    pub fn seat_channel(&self) -> String {
        format!("{}seat-changes", self.prefix)
    }

    /// Held by the one replica coordinating a switch or reset.
    pub fn switch_lock(&self) -> String {
        format!("{}switch-lock", self.prefix)
    }

    /// Hash of the replicas' acknowledgements of one switch.
    pub fn switch_acks(&self, switch_id: &str) -> String {
        format!("{}switch:{switch_id}", self.prefix)
    }

    /// Hash of instance id → heartbeat JSON of every replica.
    pub fn replicas(&self) -> String {
        format!("{}replicas", self.prefix)
    }

    /// The `distributed` and `fenced` lock on one seat.
    pub fn lock(&self, event_id: i64, seat_number: &str) -> String {
        format!("{}lock:{event_id}:{seat_number}", self.prefix)
    }

    pub fn lock_pattern(&self, event_id: i64) -> String {
        format!("{}lock:{event_id}:*", self.prefix)
    }

    /// The counter that mints one seat's fencing tokens.
    pub fn fence(&self, event_id: i64, seat_number: &str) -> String {
        format!("{}fence:{event_id}:{seat_number}", self.prefix)
    }

    pub fn fence_pattern(&self, event_id: i64) -> String {
        format!("{}fence:{event_id}:*", self.prefix)
    }

    /// The `etcd` lock on one seat: a key in etcd, not Redis, under the
    /// same prefix so that each cluster (and each test) has its own.
    pub fn etcd_lock(&self, event_id: i64, seat_number: &str) -> String {
        format!("{}etcd-lock:{event_id}:{seat_number}", self.prefix)
    }

    /// The Redlock resource for one seat, on every Redlock node.
    pub fn redlock(&self, event_id: i64, seat_number: &str) -> String {
        format!("{}redlock:{event_id}:{seat_number}", self.prefix)
    }

    pub fn redlock_pattern(&self, event_id: i64) -> String {
        format!("{}redlock:{event_id}:*", self.prefix)
    }
}
