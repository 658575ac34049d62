//! Private Redis and Postgres servers for tests that break them on
//! purpose (a Redis node killed, Postgres stopped or crashed), each on a
//! reserved port (see `ports.rs`, which must be this file's sibling module)
//! and stopped on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{self, Reserved};

/// A private redis-server on a reserved loopback port, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    _reserved: Reserved,
}

impl RedisServer {
    pub fn start() -> Self {
        let reserved = ports::reserve();
        let mut server = Self { port: reserved.port, child: None, _reserved: reserved };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (apt-get install redis-server)");
        let pid = child.id();
        self.child = Some(child);
        // Ours, not some other server on the port: INFO names our child's pid.
        let client = redis::Client::open(self.url()).expect("url");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let info = client.get_connection().and_then(|mut conn| redis::cmd("INFO").arg("server").query::<String>(&mut conn));
            if let Ok(info) = info {
                assert!(info.contains(&format!("process_id:{pid}\r")), "another redis-server answers on port {}", self.port);
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                panic!("redis-server on port {} exited at start: {status}", self.port);
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not start", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn command(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("connect");
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await.expect("redis command")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A private Postgres in a temporary folder, on a reserved port: for tests
/// that stop the database on purpose. Stopped and removed on drop.
pub struct PostgresServer {
    pub port: u16,
    dir: std::path::PathBuf,
    _reserved: Reserved,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Postgres refuses to run as root; as root, run its tools as `postgres`.
fn as_postgres(program: &str, args: &[&str]) -> Command {
    let tool = format!("{PG_BIN}/{program}");
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", &tool]);
        command
    } else {
        Command::new(&tool)
    };
    command.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    command
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0).unwrap_or(false)
}

impl PostgresServer {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("booking-lab-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            assert!(Command::new("chown").args(["-R", "postgres"]).arg(&dir).status().unwrap().success());
        }
        let data = dir.join("data").display().to_string();
        let status = as_postgres("initdb", &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"]).status().expect("initdb");
        assert!(status.success(), "initdb failed (is postgresql-15 installed?)");
        let reserved = ports::reserve();
        let server = Self { port: reserved.port, dir, _reserved: reserved };
        server.restart();
        server
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn restart(&self) {
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("log").display().to_string();
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let status = as_postgres("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "start"]).status().expect("pg_ctl");
        assert!(status.success(), "private postgres did not start");
    }

    /// Stops at once, as a crash would.
    pub fn stop(&self) {
        let data = self.dir.join("data").display().to_string();
        let _ = as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]).status();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private single-member etcd on reserved loopback ports, its data in a
/// temporary folder; killed and removed on drop.
pub struct EtcdServer {
    pub port: u16,
    child: Child,
    data: std::path::PathBuf,
    _reserved: [Reserved; 2],
}

impl EtcdServer {
    pub fn start() -> Self {
        let (client, peer) = (ports::reserve(), ports::reserve());
        let data = std::env::temp_dir().join(format!("booking-lab-etcd-{}", client.port));
        let _ = std::fs::remove_dir_all(&data);
        let client_url = format!("http://127.0.0.1:{}", client.port);
        let peer_url = format!("http://127.0.0.1:{}", peer.port);
        let child = Command::new("etcd")
            .args(["--name", "solo", "--data-dir", &data.display().to_string()])
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("solo={peer_url}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd is not installed (apt-get install etcd-server)");
        let mut server = Self { port: client.port, child, data, _reserved: [client, peer] };
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = format!("127.0.0.1:{}", server.port);
        loop {
            if http_get(&health, "/health").is_some_and(|body| body.contains("\"health\":\"true\"")) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("etcd on port {} exited at start: {status}", server.port);
            }
            assert!(Instant::now() < deadline, "etcd on port {} did not become healthy", server.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, or `None` when nothing answers.
fn http_get(address: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}
