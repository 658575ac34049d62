//! Acting on the native cluster's components: `scripts/cluster.sh VERB NAME`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// Runs the cluster script with the environment that names the cluster
/// (CLUSTER_STATE, ports), as the user would.
#[derive(Debug, Clone)]
pub struct Control {
    pub script: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Control {
    /// `scripts/cluster.sh` (or `$CLUSTER_SCRIPT`), with this process's environment.
    pub fn from_env() -> Self {
        let script = std::env::var_os("CLUSTER_SCRIPT").map_or_else(|| PathBuf::from("scripts/cluster.sh"), PathBuf::from);
        Self { script, env: Vec::new() }
    }

    /// The Redis nodes by the names `status` prints (`redis-6380`, ...), the
    /// main one first.
    pub fn redis_nodes(&self) -> anyhow::Result<Vec<String>> {
        let status = self.run(&["status"])?;
        Ok(status.lines().filter_map(|line| line.split_whitespace().next()).filter(|name| name.starts_with("redis-")).map(str::to_owned).collect())
    }

    /// The main Redis node (the strategy channel, heartbeats, the
    /// single-node locks), by the name `status` prints.
    pub fn main_redis(&self) -> anyhow::Result<String> {
        self.redis_nodes()?.into_iter().next().context("cluster.sh status lists no Redis node")
    }

    /// The etcd members by the names `status` prints (`etcd-1`, ...), each
    /// with its state (`up, leader`, `up, follower`, `down`, ...).
    pub fn etcd_members(&self) -> anyhow::Result<Vec<(String, String)>> {
        let status = self.run(&["status"])?;
        Ok(status
            .lines()
            .filter(|line| line.starts_with("etcd-"))
            .filter_map(|line| {
                let mut words = line.splitn(3, char::is_whitespace).map(str::trim).filter(|word| !word.is_empty());
                let name = words.next()?.to_owned();
                let _address = words.next();
                Some((name, line.rsplit_once("  ").map_or("", |(_, state)| state).trim().to_owned()))
            })
            .collect())
    }

    /// The etcd member that leads right now, by its name.
    pub fn etcd_leader(&self) -> anyhow::Result<String> {
        let members = self.etcd_members()?;
        members
            .iter()
            .find(|(_, state)| state.ends_with("leader") && !state.ends_with("no leader"))
            .map(|(name, _)| name.clone())
            .with_context(|| format!("no etcd member leads (cluster.sh status: {members:?})"))
    }

    /// `cluster.sh ARGS`; its output, or an error with what it printed.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(&self.script)
            .args(args)
            .envs(self.env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .output()
            .with_context(|| format!("cannot run {} (run from the repository, or set CLUSTER_SCRIPT)", self.script.display()))?;
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            bail!("cluster.sh {} failed: {printed}", args.join(" "));
        }
        Ok(printed)
    }
}
