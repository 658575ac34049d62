//! The `healthcheck` subcommand: GET /health on a replica, exit 0 on 200.
//!
//! Container images without curl run this as their health check. It speaks
//! just enough HTTP/1.1 to read a status line.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HealthcheckConfig;

pub async fn run(config: &HealthcheckConfig) -> anyhow::Result<()> {
    let timeout = Duration::from_millis(config.timeout_ms);
    tokio::time::timeout(timeout, probe(&config.addr))
        .await
        .with_context(|| format!("no answer from {} within {} ms", config.addr, config.timeout_ms))?
}

async fn probe(addr: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).await.with_context(|| format!("cannot connect to {addr}"))?;
    let request = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).await?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status = status_line.split_whitespace().nth(1).unwrap_or("none");
    if status != "200" {
        bail!("{addr}/health answered {status}");
    }
    Ok(())
}
