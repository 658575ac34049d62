//! Client-side tools that drive a running cluster through its HTTP API:
//! the README's exercises, run for every strategy, with the answers counted.

pub mod client;
pub mod exercises;
