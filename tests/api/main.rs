//! The API tests: every endpoint, every strategy, and the cross-replica lesson,
//! against real Postgres and Redis.

mod database;
mod helpers;

mod admin;
mod booking;
mod booking_service;
mod cluster;
mod contract;
mod events;
mod faults;
mod health;
mod holds;
mod idempotency;
mod integrity;
mod locks;
mod pipelined;
mod races;
mod seat_stream;
mod switching;
