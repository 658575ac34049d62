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
