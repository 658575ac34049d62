//! The lesson through the real load balancer: `scripts/cluster.sh` starts a
//! private Postgres, three Redis nodes, replica processes and nginx, exactly
//! as a user runs it, and the tests talk to nginx.

mod harness;
mod otlp;

mod bad_client;
mod contract;
mod exactly_once;
mod faults;
mod lesson;
mod load;
mod observability;
mod pool;
mod scaling;
mod seat_map;
mod switching;
