//! Two Redis operations that more than one part needs: releasing a key only
//! if it still holds the caller's token, and listing keys by pattern.
//!
//! The Redis locks (`distributed`, `fenced`) release seat locks with the
//! first, and the switch barrier releases its coordinator lock with it; the
//! clean-up of an event's locks uses the second. A leaf: it imports nothing
//! from the crate.

use redis::AsyncCommands;

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]`, in one atomic step.
/// A GET followed by a DEL could delete a lock that expired and was taken by
/// someone else in between.
const RELEASE_IF_OWNER: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Deletes `key` if it still holds `token`; `Ok(false)` when it no longer
/// did (it expired, and perhaps someone else holds it now).
pub async fn release_if_owner<C: redis::aio::ConnectionLike + Send>(redis: &mut C, key: &str, token: &str) -> redis::RedisResult<bool> {
    let deleted: i64 = redis::Script::new(RELEASE_IF_OWNER).key(key).arg(token).invoke_async(redis).await?;
    Ok(deleted == 1)
}

/// Every key matching `pattern`, found with SCAN (never KEYS, which blocks Redis).
pub async fn scan<C: redis::aio::ConnectionLike + Send + Sync>(redis: &mut C, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let mut keys = redis.scan_match::<_, String>(pattern).await?;
    while let Some(key) = keys.next_item().await {
        found.push(key?);
    }
    Ok(found)
}
