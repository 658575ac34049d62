//! Exactly-once booking through nginx: a replica killed mid-request costs a
//! client nothing when its booking carries an Idempotency-Key, whether the
//! client retries or nginx does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use booking_lab::client::LabClient;

use crate::harness::NativeCluster;

/// 16 clients book distinct seats with keys until `stop`; every answer by
/// customer (an error for no answer at all).
async fn keyed_load(client: LabClient, event: i64, stop: Arc<AtomicBool>) -> BTreeMap<String, Result<u16, String>> {
    // Result: the status of a booking or refusal, else what went wrong.
    let workers: Vec<_> = (0..16)
        .map(|worker| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let started = Instant::now();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                    let seat = format!("{}{}", ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P"][worker], n + 1);
                    let customer = format!("keyed-{event}-{worker}-{n}");
                    let answer = client.book_with_key(event, &seat, &customer, &format!("key-{customer}")).await;
                    let answer = match answer {
                        Ok(answer) if answer.status.as_u16() == 200 => Ok(200),
                        Ok(answer) => Err(format!("{} {}", answer.status, answer.body)),
                        Err(error) => Err(format!("{error:#}")),
                    };
                    answers.push((customer, answer));
                    n += 1;
                }
                answers
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all
}

/// Keys the surviving replicas (1 and 3) took over from requests that died
/// with replica-2.
async fn takeovers(cluster: &NativeCluster) -> f64 {
    cluster.replica(1).counter("idempotency_takeovers_total").await.unwrap() + cluster.replica(3).counter("idempotency_takeovers_total").await.unwrap()
}

/// Kills replica-2 under keyed load; every answer, the event, and how many
/// keys of requests in flight on replica-2 the others took over (proof that
/// the kill landed mid-request, not between requests).
async fn kill_under_load(cluster: &NativeCluster, client: LabClient) -> (BTreeMap<String, Result<u16, String>>, i64, f64) {
    let before = takeovers(cluster).await;
    let lb = cluster.client();
    lb.set_strategy("pessimistic").await.unwrap();
    let event = lb.post_json("/admin/events", serde_json::json!({"name": "exactly once", "rows": 16, "seats_per_row": 1000})).await.unwrap();
    let event = event["event"]["id"].as_i64().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(keyed_load(client, event, stop.clone()));
    // Kill it once it is busy: a machine slowed by other work may take a
    // while to bring the load up to speed.
    let replica_2 = cluster.replica(2);
    let deadline = Instant::now() + Duration::from_secs(15);
    while replica_2.counter("bookings_total").await.unwrap_or(0.0) < 10.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.script(&["kill", "replica-2"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = load.await.unwrap();
    let taken_over = takeovers(cluster).await - before;
    cluster.script(&["up"]);
    (answers, event, taken_over)
}

async fn assert_exactly_once(cluster: &NativeCluster, event: i64, answers: &BTreeMap<String, Result<u16, String>>) {
    let failures: Vec<_> = answers.iter().filter(|(_, answer)| answer.is_err()).take(5).collect();
    assert!(failures.is_empty(), "every client got its booking: {failures:?}\n{}", cluster.logs());
    assert!(answers.len() > 50, "the load ran: {} bookings", answers.len());
    let pool = sqlx::PgPool::connect(&cluster.fault_lab(3).database_url).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT customer_id, count(*) FROM bookings WHERE event_id = $1 AND status <> 'failed' GROUP BY customer_id",
    )
    .bind(event)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let booked: BTreeMap<String, i64> = rows.into_iter().collect();
    let lost: Vec<_> = answers.keys().filter(|customer| !booked.contains_key(*customer)).collect();
    let duplicated: Vec<_> = booked.iter().filter(|(_, count)| **count != 1).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(duplicated.is_empty(), "booked twice for one key: {duplicated:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_keyed_load_costs_no_client_its_booking() {
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "200")]);

    // nginx alone retries: the clients never send a request twice.
    let (answers, event, taken_over) = kill_under_load(&cluster, cluster.client().without_retries()).await;
    assert!(taken_over > 0.0, "no request was in flight on replica-2 when it was killed:\n{}", cluster.logs());
    assert_exactly_once(&cluster, event, &answers).await;

    // The clients retry what got no answer, with the same key.
    let (answers, event, taken_over) = kill_under_load(&cluster, cluster.client()).await;
    assert!(taken_over > 0.0, "no request was in flight on replica-2 when it was killed:\n{}", cluster.logs());
    assert_exactly_once(&cluster, event, &answers).await;
    let survivors = cluster.log("replica-1") + &cluster.log("replica-3");
    assert!(survivors.contains("took over an idempotency key whose request died"), "the survivors say so in their logs");
}
