//! The README's first command on a fresh Debian 12, as a new user runs it:
//! `scripts/fresh-machine.sh up` starts a new container with only Rust
//! added, runs `scripts/cluster.sh up` there (which installs what is
//! missing and builds the service) and then the exercises through nginx.

use std::process::Command;

use crate::docker::{self, root};

#[test]
fn the_quick_start_works_on_a_fresh_debian() {
    docker::image(); // the base images; built once for every Docker test
    let output = Command::new(root().join("scripts/fresh-machine.sh")).arg("up").output().expect("scripts/fresh-machine.sh");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the quick start failed on a fresh Debian:\n{printed}");
    assert!(printed.contains("prometheus   127.0.0.1:9090         up"), "`up` installed and started Prometheus:\n{printed}");
    // The exercises' table: | strategy | confirmed | double booked | failed | errors | holders | served by |
    let holders = |strategy: &str| -> u64 {
        let row = printed.lines().find(|line| line.starts_with(&format!("| {strategy} |"))).unwrap_or_else(|| panic!("no {strategy} row:\n{printed}"));
        row.split('|').nth(6).and_then(|cell| cell.split_whitespace().next()).and_then(|n| n.parse().ok()).expect("holders")
    };
    assert!(holders("none") >= 2, "none double-books:\n{printed}");
    for strategy in ["pessimistic", "optimistic", "distributed", "redlock", "fenced"] {
        assert_eq!(holders(strategy), 1, "{strategy} holds:\n{printed}");
    }
}
