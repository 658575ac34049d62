//! The cluster-wide strategy setting in Redis.
//!
//! One hash holds `name` and `version`. Changing it bumps the version and
//! publishes `version:name` in one Lua script, so no reader can see the new
//! name with the old version or miss the announcement of a stored change.

use redis::Script;
use redis::aio::ConnectionManager;

use super::Applied;
use crate::keys::Keys;
use crate::strategy::StrategyName;

/// Stores `name` under the next version and announces it; returns the version.
/// The version never goes below the caller's applied one (ARGV[3]): after a
/// Redis restart has lost the hash, a new setting must still be newer than
/// what the replicas apply, or they would ignore it.
const SET: &str = r#"
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
local floor = tonumber(ARGV[3])
if version <= floor then
    version = floor + 1
    redis.call('HSET', KEYS[1], 'version', version)
end
redis.call('HSET', KEYS[1], 'name', ARGV[1])
redis.call('PUBLISH', ARGV[2], version .. ':' .. ARGV[1])
return version
"#;

/// Stores `name` at version ARGV[2] unless a setting exists; returns the
/// stored one.
const SEED: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'name') == 0 then
    redis.call('HSET', KEYS[1], 'name', ARGV[1], 'version', ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'name', 'version')
"#;

#[derive(Clone)]
pub struct StrategyStore {
    redis: ConnectionManager,
    keys: Keys,
}

impl StrategyStore {
    pub fn new(redis: ConnectionManager, keys: Keys) -> Self {
        Self { redis, keys }
    }

    /// The stored setting, seeding it with `default` when Redis has none.
    pub async fn load_or_seed(&self, default: StrategyName) -> anyhow::Result<Applied> {
        self.seed(Applied { name: default, version: 1 }).await
    }

    /// The stored setting; when Redis has none (first start, or a restart
    /// that lost it), `applied` is stored and returned.
    pub async fn seed(&self, applied: Applied) -> anyhow::Result<Applied> {
        let (name, version): (String, u64) = Script::new(SEED)
            .key(self.keys.strategy())
            .arg(applied.name.as_str())
            .arg(applied.version)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(Applied { name: name.parse().map_err(anyhow::Error::msg)?, version })
    }

    /// The stored setting, if any.
    pub async fn load(&self) -> anyhow::Result<Option<Applied>> {
        let (name, version): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.keys.strategy())
            .arg("name")
            .arg("version")
            .query_async(&mut self.redis.clone())
            .await?;
        match (name, version) {
            (Some(name), Some(version)) => Ok(Some(Applied { name: name.parse().map_err(anyhow::Error::msg)?, version })),
            _ => Ok(None),
        }
    }

    /// Stores and announces a new setting for the whole cluster, newer than
    /// `current` (the caller's applied setting).
    pub async fn set(&self, name: StrategyName, current: Applied) -> redis::RedisResult<Applied> {
        let version: u64 = Script::new(SET)
            .key(self.keys.strategy())
            .arg(name.as_str())
            .arg(self.keys.strategy_channel())
            .arg(current.version)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(Applied { name, version })
    }
}

/// Parses an announcement, `version:name`.
pub fn parse_announcement(payload: &str) -> Option<Applied> {
    let (version, name) = payload.split_once(':')?;
    Some(Applied { name: name.parse().ok()?, version: version.parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_parse_and_garbage_does_not() {
        assert_eq!(parse_announcement("7:fenced"), Some(Applied { name: StrategyName::Fenced, version: 7 }));
        assert_eq!(parse_announcement("fenced"), None);
        assert_eq!(parse_announcement("x:fenced"), None);
        assert_eq!(parse_announcement("3:bogus"), None);
    }
}
