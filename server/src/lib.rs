//! One replica of a ticket-booking service that teaches concurrency control
//! by showing it.
//!
//! Several replicas of this service run behind a load balancer and share one
//! Postgres and one Redis. The locking strategy can be switched at runtime,
//! and every replica switches together; concurrent bookings of one seat then
//! show which strategies double-book and which hold.
//!
//! # Layout
//! - [`domain`]: the shared vocabulary (strategy names, the epoch, statuses,
//!   refusal reasons); imports nothing from the crate.
//! - [`config`]: clap settings, every one also an environment variable.
//! - [`app`]: build a replica (connect, migrate, bind) and run it until stopped.
//! - [`state`]: what every request handler shares.
//! - [`http`]: the HTTP API, one module per resource.
//! - [`booking`]: one booking's run (key, gate, strategy, outcome, live
//!   feed, stored answer), and exactly-once booking across replicas.
//! - [`holds`]: hold, then pay: a seat kept for a customer until their
//!   confirm books it or it expires (by the database's clock).
//! - [`strategy`]: the eight locking strategies, one file each; the five locks on one `Lock` trait.
//! - [`storage`]: all seat and booking SQL, which every strategy calls, and the
//!   cluster's strategy epoch that every booking's write checks.
//! - [`cluster`]: the switch barrier and booking gate, the pub/sub listener,
//!   heartbeats.
//! - [`live`]: live seat changes over Redis pub/sub, for the seat map's streams.
//! - [`activity`]: this replica's own count of its last minute of bookings.
//! - [`keys`]: every Redis key name; [`redis_ops`]: release-if-owner and SCAN.
//! - [`error`]: what goes wrong below the HTTP layer (not found, a clash, an
//!   outage, a bug); `http::error` maps it to status codes.
//! - [`metrics`], [`gauges`], [`telemetry`]: Prometheus metrics (and the timer that
//!   refreshes costly gauges), logs and OpenTelemetry traces.
//! - [`healthcheck`]: the `healthcheck` subcommand for container images.
//!
//! The lab's client tools (compare, flip, exercises, the fault lab, the
//! audit) are the other wing of the workspace, `booking_lab`: a replica never
//! links them.

pub mod activity;
pub mod app;
pub mod booking;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod error;
pub mod gauges;
pub mod healthcheck;
pub mod holds;
pub mod http;
pub mod keys;
pub mod live;
pub mod metrics;
pub mod redis_ops;
pub mod state;
pub mod storage;
pub mod strategy;
pub mod telemetry;
