//! The paths users take with Docker, run the way they take them: the image
//! built from the project's own Dockerfile with the files a clone has, run
//! against real Postgres and Redis; the Compose stack started, scaled and
//! broken; and the README's quick start in a fresh Debian container.
//!
//! No container registry is reachable where this suite runs, so
//! `scripts/docker-bases.sh` first builds what the official images would
//! give: a Debian 12 base from debootstrap, the builder (that base with this
//! machine's Rust 1.95), and stand-ins for `postgres:15-alpine` and
//! `redis:7-alpine` from Debian's packages, honouring the same environment.
//! The image is built with those as its build arguments; the Compose file is
//! used as users get it. nginx, Prometheus, Grafana, Jaeger and k6 are left
//! out of the Compose run: Debian's nginx 1.22 cannot read the config's
//! upstream `resolve` (nginx 1.27.3 and later can), so the test talks to the
//! replica containers themselves (the native cluster tests nginx).

mod docker;

mod compose;
mod fresh_machine;
mod image;
