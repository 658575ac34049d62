//! Starts and stops a native cluster with `scripts/cluster.sh`, on free ports
//! and in a state folder of its own, so clusters of parallel tests never meet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use booking_lab::faults;
use booking_lab::client::LabClient;

#[path = "../common/ports.rs"]
pub mod ports;
use ports::Reserved;

pub struct NativeCluster {
    pub lb_url: String,
    pub prometheus_url: String,
    pub replica_port_base: u16,
    state: PathBuf,
    env: Vec<(String, String)>,
    /// Every port the cluster listens on, held until it is down.
    _ports: Vec<Reserved>,
}

impl NativeCluster {
    /// `scripts/cluster.sh up REPLICAS` with a 200 ms hold: far longer than it
    /// takes to send a burst, so a race that can happen always happens.
    pub fn up(replicas: u32) -> Self {
        Self::up_with(replicas, &[])
    }

    /// `up`, with extra environment for the script and the replicas.
    pub fn up_with(replicas: u32, extra_env: &[(&str, &str)]) -> Self {
        let state = std::env::temp_dir().join(format!("booking-lab-test-{}", uuid::Uuid::new_v4().simple()));
        let mut ports = ports::reserve_range(10);
        let replica_port_base = ports[0].port;
        ports.extend((0..12).map(|_| ports::reserve()));
        let [lb_port, pg_port, prometheus_port, redis_a, redis_b, redis_c] = std::array::from_fn(|i| ports[10 + i].port);
        let redis_ports = [redis_a, redis_b, redis_c];
        let etcd_ports: [u16; 3] = std::array::from_fn(|i| ports[16 + i].port);
        let etcd_peer_ports: [u16; 3] = std::array::from_fn(|i| ports[19 + i].port);
        let mut env = vec![
            ("CLUSTER_STATE".to_owned(), state.display().to_string()),
            ("LB_PORT".to_owned(), lb_port.to_string()),
            ("REPLICA_PORT_BASE".to_owned(), replica_port_base.to_string()),
            ("PG_PORT".to_owned(), pg_port.to_string()),
            ("REDIS_PORTS".to_owned(), redis_ports.map(|port| port.to_string()).join(" ")),
            ("PROMETHEUS_PORT".to_owned(), prometheus_port.to_string()),
            ("ETCD_PORTS".to_owned(), etcd_ports.map(|port| port.to_string()).join(" ")),
            ("ETCD_PEER_PORTS".to_owned(), etcd_peer_ports.map(|port| port.to_string()).join(" ")),
            ("BOOKING_BIN".to_owned(), env!("CARGO_BIN_EXE_booking-service").to_owned()),
            ("HOLD_MS".to_owned(), "200".to_owned()),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
            ("START_PROMETHEUS".to_owned(), "no".to_owned()),
            // Admin open unless a test sets a token, whatever the shell exports.
            ("ADMIN_TOKEN".to_owned(), String::new()),
        ];
        env.extend(extra_env.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())));
        let prometheus_port = env.iter().find(|(key, _)| key == "PROMETHEUS_PORT").map(|(_, port)| port.clone()).unwrap_or_default();
        let cluster = Self {
            lb_url: format!("http://127.0.0.1:{lb_port}"),
            prometheus_url: format!("http://127.0.0.1:{prometheus_port}"),
            replica_port_base,
            state,
            env,
            _ports: ports,
        };
        cluster.script(&["up", &replicas.to_string()]);
        cluster
    }

    /// `scripts/cluster.sh ARGS` with this cluster's environment, not yet run.
    fn cluster_sh(&self, args: &[&str]) -> Command {
        let mut command = Command::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh"));
        command.args(args).envs(self.env.iter().map(|(key, value)| (key.as_str(), value.as_str())));
        command
    }

    /// Runs `scripts/cluster.sh ARGS` against this cluster; panics with its output on failure.
    pub fn script(&self, args: &[&str]) -> String {
        let output = self.cluster_sh(args).output().expect("cannot run scripts/cluster.sh");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "cluster.sh {args:?} failed:\n{stdout}\n{stderr}\n{}", self.logs());
        stdout
    }

    /// The whole log of one component (`replica-1`, `nginx`, ...).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.join("logs").join(format!("{name}.log"))).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        self.cluster_sh(&["logs"]).output().map(|output| String::from_utf8_lossy(&output.stdout).into_owned()).unwrap_or_default()
    }

    /// A client of the load balancer, with the cluster's admin token if it has one.
    pub fn client(&self) -> LabClient {
        LabClient::new(&self.lb_url).and_then(|client| client.with_admin_token(Some(self.admin_token()))).expect("client")
    }

    /// The replicas' ADMIN_TOKEN ("" when admin is open).
    pub fn admin_token(&self) -> &str {
        self.env.iter().rev().find(|(key, _)| key == "ADMIN_TOKEN").map_or("", |(_, token)| token.as_str())
    }

    /// The cluster's own Postgres database.
    pub fn database_url(&self) -> String {
        let pg_port = self.env.iter().find(|(key, _)| key == "PG_PORT").map(|(_, port)| port.clone()).expect("PG_PORT");
        format!("postgres://postgres@127.0.0.1:{pg_port}/booking")
    }

    /// Panics unless Postgres holds what `race`'s clients were told about
    /// `seat` of `event_id`, and the audit of the event finds nothing broken:
    /// read with SQL, never through the service's API.
    pub async fn agrees_in_postgres(&self, race: &booking_lab::exercises::Exercise, event_id: i64, seat: &str) {
        let pool = sqlx::PgPool::connect(&self.database_url()).await.expect("the database");
        if let Err(mismatch) = race.check_in_postgres(&pool, event_id, seat).await {
            panic!("the database disagrees with the answers: {mismatch}\n{race:?}");
        }
        pool.close().await;
    }

    /// The fault lab's handle on this cluster: its clients, its script, its database.
    pub fn fault_lab(&self, replicas: u16) -> faults::Lab {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster.sh");
        faults::Lab {
            lb: self.client(),
            replicas: (1..=replicas).map(|index| self.replica(index)).collect(),
            control: faults::control::Control { script, env: self.env.clone() },
            database_url: self.database_url(),
            soak: std::time::Duration::from_secs(15),
            soak_seed: None,
            history_file: None,
            crash_commits: faults::crashes::SynchronousCommit::On,
        }
    }

    /// A client that talks to replica `index` (1-based) directly, not through nginx.
    pub fn replica(&self, index: u16) -> LabClient {
        LabClient::new(&format!("http://127.0.0.1:{}", self.replica_port_base + index - 1))
            .and_then(|client| client.with_admin_token(Some(self.admin_token())))
            .expect("client")
    }
}

impl Drop for NativeCluster {
    fn drop(&mut self) {
        let _ = self.cluster_sh(&["down"]).output();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A well-behaved client booking distinct seats of an event of its own
/// through nginx while something else goes on (a bad client, a fuzzer):
/// four workers, without keys and without retries, so nginx cannot hide a
/// failure by trying elsewhere and every failure is counted.
pub struct GoodClient {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<BTreeMap<String, usize>>>,
}

impl GoodClient {
    pub async fn start(cluster: &NativeCluster) -> Self {
        let lb = cluster.client();
        let event = lb.post_json("/admin/events", serde_json::json!({"name": "a good client", "rows": 26, "seats_per_row": 1000})).await.unwrap();
        let event = event["event"]["id"].as_i64().unwrap();
        let client = lb.without_keys().without_retries();
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..4)
            .map(|worker| {
                let (client, stop) = (client.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut statuses = BTreeMap::new();
                    // Seat n * 4 + worker of 26 × 1000: A1 ... A1000, B1, ...
                    for index in (worker..26_000).step_by(4) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let seat = format!("{}{}", char::from(b'A' + (index / 1000) as u8), index % 1000 + 1);
                        let status = match client.book(event, &seat, &format!("good-{index}")).await {
                            Ok(answer) => answer.status.as_u16().to_string(),
                            Err(error) => format!("no answer ({error:#})"),
                        };
                        *statuses.entry(status).or_default() += 1;
                    }
                    statuses
                })
            })
            .collect();
        Self { stop, workers }
    }

    /// Stops it; its answers by status ("200", "502", "no answer (...)").
    pub async fn stop(self) -> BTreeMap<String, usize> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = BTreeMap::new();
        for worker in self.workers {
            for (status, count) in worker.await.unwrap() {
                *all.entry(status).or_default() += count;
            }
        }
        all
    }
}
