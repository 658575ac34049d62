//! What replicas say to each other on the cluster channel.
//!
//! One Redis pub/sub channel carries three kinds of message, as short text:
//! - `prepare:<switch id>:<epoch>`: a switch away from `<epoch>` begins; close
//!   the booking gate, drain, and acknowledge;
//! - `abort:<switch id>`: that switch will not happen; reopen the gate;
//! - `<epoch>:<strategy>`: the epoch is committed in Postgres; apply it and
//!   reopen the gate.
//!
//! Pub/sub drops messages while a subscriber is away, so none of them is
//! needed for safety: the epoch check in every booking's write is (see
//! [`crate::storage::epoch`]). They make the switch quick and pause-free of
//! refusals for the replicas that hear them.

use crate::domain::{Applied, StrategyName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Prepare { switch_id: String, from_epoch: u64 },
    Abort { switch_id: String },
    Commit(Applied),
}

impl Message {
    pub fn encode(&self) -> String {
        match self {
            Self::Prepare { switch_id, from_epoch } => format!("prepare:{switch_id}:{from_epoch}"),
            Self::Abort { switch_id } => format!("abort:{switch_id}"),
            Self::Commit(applied) => format!("{}:{}", applied.epoch, applied.name),
        }
    }

    pub fn parse(payload: &str) -> Option<Self> {
        let (head, rest) = payload.split_once(':')?;
        match head {
            "prepare" => {
                let (switch_id, from_epoch) = rest.split_once(':')?;
                Some(Self::Prepare { switch_id: switch_id.to_owned(), from_epoch: from_epoch.parse().ok()? })
            }
            "abort" if !rest.is_empty() => Some(Self::Abort { switch_id: rest.to_owned() }),
            epoch => {
                let name: StrategyName = rest.parse().ok()?;
                Some(Self::Commit(Applied { name, epoch: epoch.parse().ok()? }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_garbage_does_not_parse() {
        let messages = [
            Message::Prepare { switch_id: "7f3a".into(), from_epoch: 4 },
            Message::Abort { switch_id: "7f3a".into() },
            Message::Commit(Applied { name: StrategyName::Fenced, epoch: 7 }),
        ];
        for message in messages {
            assert_eq!(Message::parse(&message.encode()), Some(message));
        }
        assert_eq!(Message::parse("7:fenced"), Some(Message::Commit(Applied { name: StrategyName::Fenced, epoch: 7 })));
        for garbage in ["fenced", "x:fenced", "3:bogus", "prepare:abc", "prepare:abc:x", "abort:"] {
            assert_eq!(Message::parse(garbage), None, "{garbage}");
        }
    }
}
