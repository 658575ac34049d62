//! `scripts/cluster.sh scale N` under load: replicas join and leave behind
//! nginx and no request fails.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use booking_lab::client::LabClient;

use crate::harness::NativeCluster;

/// Books seats (and reads an event) in a loop until `stop`, for at
/// most 60 s, counting requests in `progress`; returns every answer that was
/// not a confirmed booking or a 409 (under `pessimistic` a double booking is
/// a failure too).
async fn steady_load(client: LabClient, stop: Arc<AtomicBool>, progress: Arc<AtomicUsize>) -> (usize, Vec<String>) {
    let started = Instant::now();
    let (mut sent, mut failures) = (0, Vec::new());
    let rows = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"];
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
        let seat = format!("{}{}", rows[(sent / 10) % 10], sent % 10 + 1);
        match client.book(1, &seat, &format!("load-{sent}")).await {
            Ok(answer) if matches!(answer.outcome(), "confirmed" | "failed") => {}
            Ok(answer) => failures.push(format!("{} {}", answer.status, answer.body)),
            Err(error) => failures.push(format!("{error:#}")),
        }
        if let Err(error) = client.get("/events/1/seats?available_only=true").await {
            failures.push(format!("{error:#}"));
        }
        sent += 1;
        progress.fetch_add(1, Ordering::Relaxed);
    }
    (sent, failures)
}

/// Waits until the load has sent `count` requests in all, for at most 30 s.
async fn wait_for_requests(progress: &AtomicUsize, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.load(Ordering::Relaxed) < count {
        assert!(Instant::now() < deadline, "the load stalled at {} requests", progress.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn instances_behind(cluster: &NativeCluster) -> BTreeSet<String> {
    let client = cluster.client();
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        seen.insert(client.whoami().await.expect("health"));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_and_down_keeps_serving_every_request() {
    let cluster = NativeCluster::up(3);
    cluster.client().set_strategy("pessimistic").await.expect("strategy");

    for (replicas, expected) in [(5, 5), (2, 2)] {
        let (stop, progress) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let loads: Vec<_> = (0..4).map(|_| tokio::spawn(steady_load(cluster.client(), stop.clone(), progress.clone()))).collect();
        wait_for_requests(&progress, 20).await;

        let script = cluster.script(&["scale", &replicas.to_string()]);
        let after_scale = progress.load(Ordering::Relaxed);
        wait_for_requests(&progress, after_scale + 20).await;
        stop.store(true, Ordering::Relaxed);
        let (mut sent, mut failures) = (0, Vec::new());
        for load in loads {
            let (count, failed) = load.await.expect("load task");
            sent += count;
            failures.extend(failed);
        }

        assert!(sent > 5, "the load ran through the scale: {sent} requests");
        assert!(failures.is_empty(), "scale {replicas}: {} failed requests: {failures:?}\n{script}", failures.len());
        let seen = instances_behind(&cluster).await;
        assert_eq!(seen.len(), expected, "after scale {replicas}: {seen:?}");
        cluster.client().reset(1).await.expect("reset");
    }
}
