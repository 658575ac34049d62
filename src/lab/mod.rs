//! Client-side tools that drive a running cluster through its HTTP API:
//! the README's exercises, run for every strategy, with the answers counted,
//! and the measured comparison of all strategies under load.

pub mod client;
pub mod compare;
pub mod exercises;
