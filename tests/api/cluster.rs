//! Two replicas sharing Postgres and Redis: the strategy is one setting for
//! both, and the in-process mutex stops being a lock.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Options, RedisServer, TestApp, burst, spawn_app_with};

async fn pair(strategy: &'static str) -> (TestApp, TestApp) {
    let first = spawn_app_with(Options { strategy, ..Options::default() }).await;
    let second = first.sibling("replica-b").await;
    (first, second)
}

#[tokio::test]
async fn a_strategy_set_on_one_replica_is_applied_on_the_other() {
    let (first, second) = pair("none").await;

    for strategy in ["optimistic", "fenced", "mutex"] {
        let answer = first.set_strategy(strategy).await;
        assert_eq!(answer["new_strategy"], strategy);
        assert_eq!(answer["switched"], serde_json::json!(["replica-a", "replica-b"]), "{answer}");
        // The switch answers once both replicas applied it.
        assert_eq!(first.strategy().await, strategy);
        assert_eq!(second.strategy().await, strategy);
    }

    let (status, cluster) = second.get("/admin/cluster").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cluster["count"], 2, "{cluster}");
    // Heartbeats announce the change at once, but asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, cluster) = first.get("/admin/cluster").await;
        let replicas = cluster["replicas"].as_array().unwrap();
        let ids: Vec<_> = replicas.iter().map(|replica| replica["instance_id"].as_str().unwrap()).collect();
        if ids == ["replica-a", "replica-b"] && replicas.iter().all(|replica| replica["strategy"] == "mutex") {
            break;
        }
        assert!(Instant::now() < deadline, "the heartbeats never showed mutex on both: {cluster}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stopped_replica_leaves_the_cluster_list() {
    let (first, second) = pair("none").await;
    let (_, cluster) = first.get("/admin/cluster").await;
    assert_eq!(cluster["count"], 2);

    second.stop().await;

    let (_, cluster) = first.get("/admin/cluster").await;
    assert_eq!(cluster["count"], 1, "{cluster}");
    assert_eq!(cluster["replicas"][0]["instance_id"], "replica-a");
}

#[tokio::test]
async fn mutex_double_books_across_two_replicas() {
    let (first, second) = pair("mutex").await;
    for round in 0..3 {
        first.reset().await;
        let race = burst(&[&first, &second], "A1", 10).await;
        assert_eq!(race.errors, 0, "round {round}: {race:?}");
        assert!(race.double_booked >= 1, "round {round}: each replica's mutex lets one in: {race:?}");
        assert_eq!(first.double_booking_count().await, 1, "round {round}");
    }
}

async fn assert_holds_across_replicas(strategy: &'static str) {
    let (first, second) = pair(strategy).await;
    for round in 0..3 {
        first.reset().await;
        let race = burst(&[&first, &second], "A1", 10).await;
        assert_eq!(race.errors, 0, "{strategy} round {round}: {race:?}");
        assert_eq!(race.confirmed, 1, "{strategy} round {round}: {race:?}");
        assert_eq!(race.double_booked, 0, "{strategy} round {round}: {race:?}");
        assert_eq!(first.double_booking_count().await, 0, "{strategy} round {round}");
        assert_eq!(race.replicas.len(), 2, "both replicas served: {race:?}");
    }
}

#[tokio::test]
async fn pessimistic_holds_across_replicas() {
    assert_holds_across_replicas("pessimistic").await;
}

#[tokio::test]
async fn optimistic_holds_across_replicas() {
    assert_holds_across_replicas("optimistic").await;
}

#[tokio::test]
async fn distributed_holds_across_replicas() {
    assert_holds_across_replicas("distributed").await;
}

#[tokio::test]
async fn redlock_holds_across_replicas() {
    assert_holds_across_replicas("redlock").await;
}

#[tokio::test]
async fn fenced_holds_across_replicas() {
    assert_holds_across_replicas("fenced").await;
}

#[tokio::test]
async fn a_replica_that_starts_later_applies_the_current_strategy() {
    let first = spawn_app_with(Options { strategy: "none", ..Options::default() }).await;
    first.set_strategy("redlock").await;

    // Its own setting only seeds an empty Redis; the cluster's setting wins.
    let late = spawn_app_with(Options { instance_id: "late".into(), strategy: "pessimistic", ..first.options.clone() }).await;

    assert_eq!(late.strategy().await, "redlock");
}

#[tokio::test]
async fn a_replica_whose_pubsub_connection_drops_catches_up() {
    let redis = RedisServer::start();
    // A 100 ms switch timeout: the whole switch, commit included, is over
    // long before the listeners reconnect (500 ms after losing the connection).
    let first = spawn_app_with(Options { redis_url: redis.url(), switch_timeout_ms: 100, ..Options::default() }).await;
    let second = first.sibling("replica-b").await;
    let channel = format!("{}strategy-changed", first.options.prefix);
    wait_for_subscribers(&redis, &channel, 2).await;

    redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    // Announced while nobody listens: the messages are lost, so neither
    // replica acknowledges the switch, which goes ahead without them. The
    // second replica can only learn of it by reading the epoch when it
    // reconnects.
    let answer = first.set_strategy("distributed").await;
    assert_eq!(answer["lagging"], serde_json::json!(["replica-a", "replica-b"]), "the announcement was missed: {answer}");

    second.wait_for_strategy("distributed").await;
    wait_for_subscribers(&redis, &channel, 2).await;
    first.set_strategy("fenced").await;
    second.wait_for_strategy("fenced").await;
}

#[tokio::test]
async fn an_old_announcement_cannot_roll_a_newer_setting_back() {
    let (first, second) = pair("none").await;
    first.set_strategy("optimistic").await;
    first.set_strategy("fenced").await;
    second.wait_for_strategy("fenced").await;

    let client = redis::Client::open(first.options.redis_url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("{}strategy-changed", first.options.prefix);
    let receivers: i64 = redis::cmd("PUBLISH").arg(&channel).arg("2:optimistic").query_async(&mut conn).await.unwrap();
    assert_eq!(receivers, 2);
    // Messages are handled in order: once both replicas have acknowledged a
    // `prepare` sent after it, the old announcement has been handled too.
    let current = first.get("/admin/strategy").await.1["version"].as_u64().unwrap();
    let _: i64 = redis::cmd("PUBLISH").arg(&channel).arg(format!("prepare:marker:{current}")).query_async(&mut conn).await.unwrap();
    let acks = format!("{}switch:marker", first.options.prefix);
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis::cmd("HLEN").arg(&acks).query_async::<i64>(&mut conn).await.unwrap() < 2 {
        assert!(Instant::now() < deadline, "the replicas never acknowledged the marker");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _: i64 = redis::cmd("PUBLISH").arg(&channel).arg("abort:marker").query_async(&mut conn).await.unwrap();

    assert_eq!(first.strategy().await, "fenced");
    assert_eq!(second.strategy().await, "fenced");
}

async fn wait_for_subscribers(redis: &RedisServer, channel: &str, expected: i64) {
    for _ in 0..100 {
        if let redis::Value::Array(reply) = redis.command(&["PUBSUB", "NUMSUB", channel]).await
            && reply.get(1) == Some(&redis::Value::Int(expected))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{expected} subscribers never appeared on {channel}");
}

#[tokio::test]
async fn a_redis_restart_that_loses_the_setting_does_not_freeze_the_strategy() {
    let mut redis = RedisServer::start();
    let first = spawn_app_with(Options { redis_url: redis.url(), ..Options::default() }).await;
    let second = first.sibling("replica-b").await;
    first.set_strategy("optimistic").await;
    first.set_strategy("fenced").await;
    second.wait_for_strategy("fenced").await;

    // No persistence: the restarted Redis has forgotten the setting and its version.
    redis.stop();
    redis.restart();
    let channel = format!("{}strategy-changed", first.options.prefix);
    wait_for_subscribers(&redis, &channel, 2).await;

    let answer = first.set_strategy("pessimistic").await;
    assert!(answer["version"].as_u64().unwrap() > 3, "the new setting is newer than the applied one: {answer}");
    assert_eq!(first.strategy().await, "pessimistic");
    second.wait_for_strategy("pessimistic").await;
}
