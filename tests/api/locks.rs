//! The one lock wrapper every lock strategy books through
//! (`server/src/strategy/lock.rs`), once per strategy: a lock someone else
//! holds is `lock_busy`, a lock is given back when the booking fails, and the
//! two locks that mint fencing tokens refuse a holder whose lock lapsed.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{EtcdServer, Options, TestApp, spawn_app_with};

/// The strategies that take a lock across replicas.
const REMOTE_LOCKS: [&str; 4] = ["distributed", "redlock", "fenced", "etcd"];

async fn app(strategy: &'static str, etcd: &EtcdServer, hold_ms: u64) -> TestApp {
    spawn_app_with(Options { strategy, hold_ms, etcd_urls: vec![etcd.url()], ..Options::default() }).await
}

#[tokio::test]
async fn a_lock_someone_else_holds_is_lock_busy_under_every_remote_lock() {
    let etcd = EtcdServer::start();
    for strategy in REMOTE_LOCKS {
        // The first holds A1 for 400 ms; the second asks 150 ms in.
        let app = app(strategy, &etcd, 400).await;
        let first = app.book("A1", "first");
        let second = async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            app.book_retry_after("A1", "second").await
        };
        let ((first_status, first), (second_status, second, retry_after)) = tokio::join!(first, second);
        assert_eq!(first_status, StatusCode::OK, "{strategy}: {first}");
        assert_eq!(second_status, StatusCode::CONFLICT, "{strategy}: {second}");
        assert_eq!((second["reason"].as_str(), second["code"].as_str()), (Some("lock_busy"), Some("lock_busy")), "{strategy}: {second}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{strategy}: a busy lock says when to try again");
        app.stop().await;
    }
}

#[tokio::test]
async fn the_in_process_mutex_queues_instead_of_refusing() {
    let etcd = EtcdServer::start();
    let app = app("mutex", &etcd, 400).await;
    let first = app.book("A1", "first");
    let second = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.book("A1", "second").await
    };
    let ((first_status, _), (second_status, second)) = tokio::join!(first, second);
    assert_eq!(first_status, StatusCode::OK);
    assert_eq!(second_status, StatusCode::CONFLICT, "{second}");
    assert_eq!(second["reason"], "seat_taken", "it waited for the mutex, then read the seat: {second}");
}

#[tokio::test]
async fn a_lock_is_given_back_when_the_booking_under_it_fails() {
    let etcd = EtcdServer::start();
    for strategy in ["mutex", "distributed", "redlock", "fenced", "etcd"] {
        let app = app(strategy, &etcd, 0).await;
        // Each takes Z99's lock, then fails: there is no such seat. Held
        // locks would make the second `lock_busy` (their TTL is 5 s).
        for attempt in ["first", "second"] {
            let (status, body) = tokio::time::timeout(Duration::from_secs(5), app.book("Z99", "nobody")).await.expect("no answer");
            assert_eq!(status, StatusCode::NOT_FOUND, "{strategy}, {attempt} attempt: {body}");
        }
        let (status, body) = app.book("A1", "somebody").await;
        assert_eq!(status, StatusCode::OK, "{strategy}: {body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn an_etcd_lock_whose_lease_ran_out_is_refused_by_its_fencing_token() {
    let etcd = EtcdServer::start();
    // A 1 s TTL becomes etcd's 2 s minimum lease. The first holder "pays"
    // for 3.5 s; the second asks at 3 s, when the lease has run out.
    let app = spawn_app_with(Options { strategy: "etcd", hold_ms: 3500, lock_ttl_ms: 1000, etcd_urls: vec![etcd.url()], ..Options::default() }).await;
    let (_, settings) = app.get("/admin/strategy").await;
    assert_eq!(settings["etcd_lease_ms"], 2000, "{settings}");
    let first = app.book("A1", "slow-payer");
    let second = async {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        app.book("A1", "second-holder").await
    };
    let ((first_status, first), (second_status, second)) = tokio::join!(first, second);
    assert_eq!(first_status, StatusCode::CONFLICT, "{first}");
    assert_eq!(first["reason"], "stale_token", "{first}");
    assert_eq!(second_status, StatusCode::OK, "{second}");
    assert_eq!(second["status"], "confirmed", "{second}");
    let (older, newer) = (first["fencing_token"].as_i64().unwrap(), second["fencing_token"].as_i64().unwrap());
    assert!(newer > older, "the later holder's revision is larger: {older} then {newer}");
    assert_eq!(app.double_booking_count().await, 0);
}

#[tokio::test]
async fn fenced_seeds_a_lost_token_counter_from_the_seat_row() {
    let app = spawn_app_with(Options { strategy: "fenced", hold_ms: 0, ..Options::default() }).await;
    // As a Redis restart leaves it: the seat row was stamped with token 50
    // by a holder that did not book, and Redis has no counter for the seat.
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    sqlx::query("UPDATE seats SET fencing_token = 50 WHERE event_id = 1 AND seat_number = 'A1'").execute(&pool).await.unwrap();
    pool.close().await;

    let (status, body) = app.book("A1", "after-the-restart").await;
    assert_eq!(status, StatusCode::OK, "a counter counting from 1 again would be refused stale_token: {body}");
    assert_eq!(body["fencing_token"], 51, "{body}");
    let (status, body) = app.book("A2", "untouched-seat").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fencing_token"], 1, "{body}");
}
