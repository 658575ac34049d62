//! Ports reserved across every test process of a run.
//!
//! nextest runs each test in its own process, several at once, and many of
//! them start servers on ports of their own choosing (private Redis and
//! Postgres, whole native clusters). Bind-and-release is not enough: two
//! processes can be handed the same free port before either binds it. So a
//! port is reserved by creating `/tmp/booking-lab-ports/PORT` exclusively,
//! with the owner's pid inside; a reservation whose process is gone is stale
//! and taken over. Ports come from 10000-30000, below Linux's ephemeral
//! range (32768 and up), so outgoing connections never take them either.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;

const FIRST: u16 = 10_000;
const LAST: u16 = 30_000;

/// A port held for this test until dropped.
pub struct Reserved {
    pub port: u16,
    path: PathBuf,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn folder() -> PathBuf {
    let dir = std::env::temp_dir().join("booking-lab-ports");
    std::fs::create_dir_all(&dir).expect("cannot create the port reservation folder");
    dir
}

/// Takes `port` if nobody (alive) holds it and it is free to bind.
fn take(port: u16) -> Option<Reserved> {
    let path = folder().join(port.to_string());
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let _ = write!(file, "{}", std::process::id());
                let reserved = Reserved { port, path };
                return TcpListener::bind(("127.0.0.1", port)).is_ok().then_some(reserved);
            }
            Err(_) => {
                let owner = std::fs::read_to_string(&path).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
                let alive = owner.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                if alive {
                    return None;
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    None
}

/// One reserved port.
pub fn reserve() -> Reserved {
    reserve_range(1).pop().expect("one port")
}

/// `count` consecutive reserved ports.
pub fn reserve_range(count: u16) -> Vec<Reserved> {
    for _ in 0..500 {
        let base = rand::random_range(FIRST..LAST - count);
        let taken: Vec<Reserved> = (base..base + count).map_while(take).collect();
        if taken.len() == usize::from(count) {
            return taken;
        }
    }
    panic!("no {count} consecutive free ports between {FIRST} and {LAST}");
}
