//! The lab's client side: tools that drive a running cluster through its
//! HTTP API and read its database to check what it holds.
//!
//! A replica never links this crate; it depends on the server only for the
//! shared vocabulary (`booking_server::domain`).
//!
//! # Layout
//! - [`commands`]: the lab's subcommands of `booking-service`, and what each runs.
//! - [`config`]: their settings: one [`config::Target`] and one [`config::Load`]
//!   flattened into each.
//! - [`client`]: a typed client for the booking API.
//! - [`load`]: the one load driver (contended bookings of one event), which
//!   `compare`, `flip` and the fault lab share.
//! - [`exercises`]: the README's exercise (many customers, one seat) for
//!   every strategy, and its check in Postgres.
//! - [`compare`]: every strategy under the same contended load, measured;
//!   [`chart`] draws it as an SVG.
//! - [`progress`]: the ticking status line of the long commands.
//! - [`flip`]: contended load while the strategy switches.
//! - [`flash_sale`]: hold, pay, confirm: a flash sale for every strategy.
//! - [`audit`]: an independent check of what the database holds against the
//!   invariants (and against what clients were told).
//! - [`faults`]: the fault lab, failures injected into the running native
//!   cluster, one scenario at a time, every strategy, with a verdict.

pub mod audit;
pub mod chart;
pub mod client;
pub mod commands;
pub mod compare;
pub mod config;
pub mod exercises;
pub mod faults;
pub mod flash_sale;
pub mod flip;
pub mod load;
pub mod progress;
