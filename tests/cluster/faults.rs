//! The fault lab on a native cluster with short holds and TTLs: every
//! scenario, every strategy, and the verdicts the lesson promises.

use booking_lab::faults::{self, Scenario};

use crate::harness::NativeCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_scenario_goes_as_the_lesson_says() {
    let cluster = NativeCluster::up_with(3, &[("HOLD_MS", "300"), ("LOCK_TTL_MS", "600")]);
    let lab = cluster.fault_lab(3);

    for scenario in Scenario::ALL {
        eprintln!("==> {scenario:?}");
        let report = faults::run(&lab, scenario).await.unwrap_or_else(|error| panic!("{scenario:?}: {error:#}\n{}", cluster.logs()));
        let table = faults::markdown(&report);
        eprintln!("{table}");
        assert!(report.as_taught(), "{scenario:?} did not go as taught:\n{table}\n{}", cluster.logs());
        match scenario {
            Scenario::PauseHolder => {
                let holders = |strategy: &str| report.rows.iter().find(|row| row.strategy == strategy).unwrap().database_holds.clone();
                for strategy in ["none", "mutex", "distributed", "redlock"] {
                    assert_eq!(holders(strategy), "2 holder(s)", "{table}");
                }
                for strategy in ["pessimistic", "optimistic", "fenced", "etcd"] {
                    assert_eq!(holders(strategy), "1 holder(s)", "{table}");
                }
                assert!(table.contains("holder: 409 stale_token"), "fenced refuses the frozen holder: {table}");
            }
            Scenario::RedisMinority | Scenario::RedisMajority | Scenario::RedisRestart => {
                let row = |strategy: &str| report.rows.iter().find(|row| row.strategy == strategy).unwrap().clients_told.clone();
                let refused_while_down = |strategy: &str| row(strategy).contains("; 0 booked while down");
                let majority = scenario == Scenario::RedisMajority;
                assert_eq!(refused_while_down("redlock"), majority, "redlock needs a majority: {table}");
                let main_down = scenario != Scenario::RedisMinority;
                for strategy in ["distributed", "fenced"] {
                    assert_eq!(refused_while_down(strategy), main_down, "{strategy} needs the main node: {table}");
                }
                for strategy in ["pessimistic", "optimistic"] {
                    assert!(!refused_while_down(strategy), "{strategy} does not book through Redis: {table}");
                }
            }
            Scenario::PostgresRestart => {
                assert_eq!(report.rows.len(), 8, "{table}");
                assert!(report.rows.iter().all(|row| !row.clients_told.contains("×500")), "never a 500: {table}");
            }
            Scenario::PostgresCrash => {
                assert_eq!(report.rows.len(), 1, "durable commits only, unless asked: {table}");
                let row = &report.rows[0];
                assert!(row.strategy.contains("synchronous_commit=on"), "{table}");
                assert!(row.injected.contains(": all gone)"), "every Postgres process was gone: {table}");
                assert!(row.database_holds.ends_with("all there; audit clean"), "no acknowledged booking lost: {table}");
                assert!(!row.clients_told.contains("; 0 under way while it was down failed"), "clients saw the crash: {table}");
            }
            Scenario::RedisCrash => {
                assert_eq!(report.rows.len(), 3, "{table}");
                for row in &report.rows {
                    assert!(row.injected.contains(": all gone)"), "the main Redis was gone: {table}");
                    let refused = row.clients_told.ends_with("; 0 booked while down");
                    assert_eq!(refused, row.strategy != "redlock", "{table}");
                }
            }
            Scenario::ReplicaCrash => {
                assert_eq!(report.rows.len(), 3, "{table}");
                for row in report.rows.iter().filter(|row| row.strategy.contains("with keys")) {
                    assert!(row.clients_told.ends_with("; 0 client-visible failure(s)"), "{table}");
                    assert!(!row.injected.contains("; 0 of its in-flight keys"), "requests were in flight on the killed replica: {table}");
                }
                let control = report.rows.iter().find(|row| row.strategy.contains("no keys")).unwrap();
                assert!(!control.clients_told.contains("; 0 client-visible failure(s)"), "without keys the kill cost clients answers: {table}");
            }
            Scenario::EtcdMinority | Scenario::EtcdMajority => {
                let row = &report.rows[0];
                let refused = row.clients_told.ends_with("; 0 booked while down");
                assert_eq!(refused, scenario == Scenario::EtcdMajority, "a majority of members grants, a minority cannot: {table}");
                assert!(row.database_holds.ends_with("all there; audit clean"), "{table}");
            }
            Scenario::EtcdLeader => {
                let row = &report.rows[0];
                assert!(row.injected.contains("(the leader) killed"), "{table}");
                assert!(!row.clients_told.ends_with(" 0 booked before the old leader was back"), "a new leader took over: {table}");
            }
            Scenario::LockRestart => {
                assert_eq!(report.rows.iter().map(|row| row.strategy.as_str()).collect::<Vec<_>>(), ["fenced", "etcd"], "{table}");
                for row in &report.rows {
                    assert!(row.clients_told.ends_with(", 0 stale_token"), "no seat refuses a new holder after the restart: {table}");
                    assert!(row.database_holds.starts_with("8 of 8 seats saw a larger token"), "tokens kept rising: {table}");
                }
            }
            Scenario::HoldExpiry => {
                assert_eq!(report.rows.len(), 8, "every strategy: {table}");
                for row in &report.rows {
                    assert!(row.clients_told.starts_with("alice (late): 410 hold_expired; bob: 200 confirmed"), "{table}");
                    assert!(row.database_holds.starts_with(&format!("{} owned by bob", row.database_holds.split(' ').next().unwrap())), "{table}");
                }
            }
            Scenario::HoldReplicaCrash => {
                assert_eq!(report.rows.len(), 6, "every safe strategy: {table}");
                for row in &report.rows {
                    assert!(row.injected.ends_with("was killed (SIGKILL)"), "the kill landed: {table}");
                    assert!(row.clients_told.starts_with("confirm: 200 confirmed by replica-"), "{table}");
                    assert!(!row.clients_told.starts_with("confirm: 200 confirmed by replica-2"), "another replica confirmed: {table}");
                }
            }
            Scenario::FlashSalePostgresRestart => {
                assert_eq!(report.rows.len(), 2, "{table}");
                for row in &report.rows {
                    assert!(row.clients_told.ends_with(" answers 503, 0 anything else"), "{table}");
                    assert!(!row.clients_told.contains("; 0 answers 503"), "the outage landed inside the sale: {table}");
                    assert!(row.database_holds.contains(" 0 double bookings, 0 confirmed bookings lost, 0 unbacked; audit: clean"), "{table}");
                }
            }
            Scenario::Soak => {
                assert_eq!(report.rows.len(), 6, "one row per safe strategy: {table}");
                for row in &report.rows {
                    assert!(row.injected.starts_with("seed "), "the seed is reported: {table}");
                    let faults: Vec<&str> = row.injected.rsplit_once("fault(s): ").unwrap().1.split(", ").collect();
                    let kinds = [
                        faults.iter().any(|f| f.starts_with("replica-") && f.contains(" paused ")),
                        faults.iter().any(|f| f.starts_with("replica-") && f.ends_with(" killed (SIGKILL)")),
                        faults.iter().any(|f| f.starts_with("redis-") && f.contains(" killed (back empty after ")),
                        faults.iter().any(|f| *f == "postgres killed (SIGKILL)"),
                    ];
                    assert_eq!(kinds, [true; 4], "{}: every kind of fault at least once: {table}", row.strategy);
                    assert!(row.database_holds.ends_with(" 0 lost acknowledgement(s)"), "{table}");
                    if matches!(row.strategy.as_str(), "pessimistic" | "optimistic" | "fenced" | "etcd") {
                        assert!(row.database_holds.starts_with("0 double-booked"), "{table}");
                    }
                }
            }
        }
    }
}
