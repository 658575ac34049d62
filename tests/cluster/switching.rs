//! Switching is a race too, on the native cluster: the strategy flips under
//! contended load through nginx, and a replica frozen with SIGSTOP sleeps
//! through a switch.

use std::time::Duration;

use booking_server::domain::StrategyName;
use booking_lab::flip;
use reqwest::StatusCode;

use crate::harness::NativeCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_among_the_safe_strategies_under_contended_load_double_books_nothing() {
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "50")]);
    let settings = flip::Settings {
        strategies: StrategyName::SAFE.to_vec(),
        duration: Duration::from_secs(6),
        concurrency: 32,
        contenders: 4,
        interval: Duration::from_millis(300),
    };

    let report = flip::run(&cluster.client(), &settings, &booking_lab::progress::Ticker::over(settings.duration)).await.expect("flip run");

    let context = format!("{report:#?}\n{}", cluster.logs());
    // Nominally one switch every 300 ms; on a busy machine a switch itself
    // takes a while, so the margin is wide.
    assert!(report.switches >= 5, "the strategy did flip under the load: {context}");
    assert_eq!(report.failed_switches, 0, "{context}");
    assert_eq!(report.errors, 0, "{context}");
    assert!(report.confirmed > 100, "the load did book: {context}");
    assert_eq!(report.double_booked_seats, 0, "{context}");
    assert_eq!(report.double_booked_answers, 0, "{context}");
    assert_eq!(report.booked_seats, report.confirmed as u64, "every confirmed answer is one booked seat: {context}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_paused_through_a_switch_completes_no_booking_under_the_old_strategy() {
    // A 400 ms hold: replica-3 is frozen in the middle of its booking.
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "400"), ("SWITCH_TIMEOUT_MS", "500")]);
    let (first, paused) = (cluster.replica(1), cluster.replica(3));
    first.set_strategy("none").await.expect("none");

    let sleeper = tokio::spawn(async move { paused.book(1, "A1", "sleeper").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.script(&["pause", "replica-3"]);

    let switch = first.set_strategy("pessimistic").await.expect("the switch goes ahead without the paused replica");
    assert_eq!(switch["lagging"], serde_json::json!(["replica-3"]), "{switch}");
    assert_eq!(switch["switched"], serde_json::json!(["replica-1", "replica-2"]), "{switch}");
    let winner = first.book(1, "A1", "winner").await.expect("book");
    assert_eq!(winner.status, StatusCode::OK, "{:?}", winner.body);
    assert_eq!(winner.body["status"], "confirmed", "{:?}", winner.body);

    cluster.script(&["resume", "replica-3"]);
    let sleeper = sleeper.await.unwrap().expect("the paused replica answers once resumed");
    assert_eq!(sleeper.status, StatusCode::CONFLICT, "{:?}", sleeper.body);
    assert_eq!(sleeper.body["reason"], "stale_strategy", "{:?}", sleeper.body);

    // What Postgres holds, read with SQL: one booking row, the winner's.
    let pool = sqlx::PgPool::connect(&cluster.database_url()).await.unwrap();
    let a1 = booking_lab::audit::seat(&pool, 1, "A1").await.unwrap();
    pool.close().await;
    assert_eq!((a1.holders.as_slice(), a1.booked_by.as_deref(), a1.holders_counted), (&["winner".to_owned()][..], Some("winner"), 1), "{a1:?}");

    let after = cluster.replica(3).book(1, "A2", "after-resume").await.expect("book");
    assert_eq!(after.body["strategy"], "pessimistic", "the resumed replica caught up: {:?}", after.body);
    assert!(cluster.script(&["status"]).contains("replica-3    127.0.0.1"), "status still lists it");
}
