#!/usr/bin/env bash
# The native cluster on loopback, no Docker: a private Postgres, three Redis
# nodes, a three-member etcd cluster, N replicas of the booking service and
# nginx in front of them.
#
#   scripts/cluster.sh up [N]     start everything (N replicas, default 3)
#   scripts/cluster.sh scale N    add or remove replicas, reload nginx, drop nothing
#   scripts/cluster.sh status     what runs, where (and what is paused)
#   scripts/cluster.sh logs [NAME] tail the logs (NAME: replica-2, nginx, postgres, redis-6380, etcd-1, ...)
#   scripts/cluster.sh down       stop what `up` started
#
# Break it on purpose (NAME as `status` prints it: replica-2, redis-6381,
# etcd-2, postgres, nginx):
#   scripts/cluster.sh kill NAME     SIGKILL, as a crash would
#   scripts/cluster.sh pause NAME    SIGSTOP: frozen, connections open (a GC pause, a VM stall)
#   scripts/cluster.sh resume NAME   SIGCONT
#   scripts/cluster.sh stop NAME     graceful stop
#   scripts/cluster.sh start NAME    start it again (`up` also starts whatever is down)
#
# Settings (environment): LB_PORT (8000), REPLICA_PORT_BASE (8001: replicas
# listen on 8001, 8002, ...), PG_PORT (15432), REDIS_PORTS ("6380 6381 6382";
# the first is the main Redis, all serve Redlock), ETCD_PORTS ("2379 2389 2399":
# the members' client ports) and ETCD_PEER_PORTS ("2380 2390 2400"; START_ETCD
# no leaves etcd out), PROMETHEUS_PORT (9090),
# CLUSTER_STATE (.cluster), BOOKING_BIN (default: a release build made here),
# START_PROMETHEUS (yes; no skips it), PG_SYNCHRONOUS_COMMIT (unset: Postgres'
# default, on: durable commits), TOKIO_WORKER_THREADS (each replica's
# worker threads; default: the cores divided among the replicas, at least 1).
# Replica settings such as HOLD_MS, LOCKING_STRATEGY or ADMIN_TOKEN pass
# through, and are remembered: a replica restarted later runs with them too.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${CLUSTER_STATE:-$ROOT/.cluster}
LB_PORT=${LB_PORT:-8000}
REPLICA_PORT_BASE=${REPLICA_PORT_BASE:-8001}
PG_PORT=${PG_PORT:-15432}
REDIS_PORTS=${REDIS_PORTS:-6380 6381 6382}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
MAX_REPLICAS=20

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ETCD_PORTS=${ETCD_PORTS:-2379 2389 2399}
ETCD_PEER_PORTS=${ETCD_PEER_PORTS:-2380 2390 2400}

read -r -a redis_ports <<<"$REDIS_PORTS"
main_redis=${redis_ports[0]}
read -r -a etcd_ports <<<"$ETCD_PORTS"
read -r -a etcd_peer_ports <<<"$ETCD_PEER_PORTS"
[ ${#etcd_ports[@]} = ${#etcd_peer_ports[@]} ] || { echo "error: ETCD_PORTS and ETCD_PEER_PORTS must name as many ports" >&2; exit 1; }

# --- helpers ---------------------------------------------------------------

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { # pid_alive PIDFILE: running (a killed process that nobody reaped yet is a zombie: dead)
    local pid
    [ -f "$1" ] && pid=$(cat "$1" 2>/dev/null) && kill -0 "$pid" 2>/dev/null \
        && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what did not come up within ${seconds}s (see scripts/cluster.sh logs)"
        sleep 0.1
    done
}

terminate() { # terminate NAME PIDFILE: SIGTERM; SIGKILL if it has not exited within 10 s
    local name=$1 pidfile=$2 pid
    if pid_alive "$pidfile"; then
        say "stopping $name"
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 100); do pid_alive "$pidfile" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do pid_alive "$pidfile" || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
}

# Postgres refuses to run as root: as root, run it as the postgres user.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

replica_count() { cat "$STATE/replicas.count" 2>/dev/null || echo 0; }
replica_port() { echo $((REPLICA_PORT_BASE + $1 - 1)); }

require_binaries() {
    local missing=()
    [ -x "$PG_BIN/postgres" ] || missing+=("postgresql-15")
    command -v redis-server >/dev/null || missing+=("redis-server")
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=("nginx-light")
    command -v curl >/dev/null || missing+=("curl")
    if [ "${START_PROMETHEUS:-yes}" = yes ]; then command -v prometheus >/dev/null || missing+=("prometheus"); fi
    if [ "${START_ETCD:-yes}" = yes ]; then command -v etcd >/dev/null || missing+=("etcd-server"); fi
    # Building the service (no BOOKING_BIN) compiles etcd's protobufs.
    if [ -z "${BOOKING_BIN:-}" ]; then command -v protoc >/dev/null || missing+=("protobuf-compiler"); fi
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            say "installing ${missing[*]}"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        else
            die "missing ${missing[*]}: on Debian, sudo apt-get install ${missing[*]}"
        fi
    fi
    PATH=$PATH:/usr/sbin
}

booking_bin() {
    if [ -n "${BOOKING_BIN:-}" ]; then
        [ -x "$BOOKING_BIN" ] || die "BOOKING_BIN=$BOOKING_BIN is not an executable"
        echo "$BOOKING_BIN"
        return
    fi
    command -v cargo >/dev/null || die "cargo is missing: install Rust from rustup.rs, or set BOOKING_BIN"
    say "cargo build --release" >&2
    (cd "$ROOT" && cargo build --release --quiet) >&2
    echo "$ROOT/target/release/booking-service"
}

# --- components ------------------------------------------------------------

# Where Postgres keeps its data, socket and log: in the state folder, unless
# (as root) the postgres user cannot reach it, as in /root on Debian 12,
# whose home folders are private (0700). Then in a folder of this state's own
# under /var/lib/booking-lab, named in $STATE/postgres.home.
pg_home() {
    if [ -f "$STATE/postgres.home" ]; then cat "$STATE/postgres.home"; return; fi
    local home=$STATE
    if [ "$(id -u)" = 0 ] && ! as_pg test -x "$STATE"; then
        home=/var/lib/booking-lab/$(printf '%s' "$STATE" | md5sum | cut -c1-12)
        mkdir -p "$home"
        chmod 755 /var/lib/booking-lab "$home"
    fi
    echo "$home" >"$STATE/postgres.home"
    echo "$home"
}

start_postgres() {
    local home data run log
    home=$(pg_home)
    data=$home/postgres run=$home/run log=$home/postgres.log
    if pid_alive "$STATE/pids/postgres.pid"; then return; fi
    if [ -f "$data/postmaster.pid" ]; then # left by a killed postmaster: wait until it is reaped
        local old key stray
        old=$(head -n1 "$data/postmaster.pid")
        for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
        # A backend that outlived its postmaster (stuck where it does not
        # notice the postmaster is gone) keeps the old shared memory
        # attached, and Postgres refuses to start beside it: kill what is
        # still attached to this data directory's segment (its key is on
        # line 7 of postmaster.pid).
        key=$(sed -n 7p "$data/postmaster.pid" | awk '{print $1}')
        if [[ "$key" =~ ^[0-9]+$ ]]; then
            stray=$(grep -l "SYSV$(printf '%08x' "$key")" /proc/[0-9]*/maps 2>/dev/null | cut -d/ -f3 || true)
            if [ -n "$stray" ]; then
                say "killing postgres processes left from the crash: $(echo $stray)"
                # shellcheck disable=SC2086 # one pid per word
                kill -KILL $stray 2>/dev/null || true
                for _ in $(seq 100); do grep -qs "SYSV$(printf '%08x' "$key")" /proc/[0-9]*/maps || break; sleep 0.05; done
            fi
        fi
    fi
    port_busy "$PG_PORT" && die "port $PG_PORT is taken: set PG_PORT to a free port"
    mkdir -p "$run"
    if [ "$(id -u)" = 0 ]; then chown postgres "$run"; fi
    if [ ! -s "$data/PG_VERSION" ]; then
        say "initdb $data"
        mkdir -p "$data"
        if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
        as_pg test -w "$data" || die "the postgres user cannot write $data: set CLUSTER_STATE to a folder it can reach"
        as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --no-sync >"$STATE/logs/initdb.log" 2>&1 \
            || die "initdb failed: see $STATE/logs/initdb.log"
    fi
    say "postgres on 127.0.0.1:$PG_PORT"
    touch "$log"
    if [ "$(id -u)" = 0 ]; then chown postgres "$log"; fi
    [ "$log" = "$STATE/logs/postgres.log" ] || ln -sfn "$log" "$STATE/logs/postgres.log"
    # Durable commits unless PG_SYNCHRONOUS_COMMIT says otherwise: a booking
    # is acknowledged only once its commit is on disk, so a crash loses none
    # (the fault lab's postgres-crash shows what `off` loses). Unset, nothing
    # is passed, so ALTER SYSTEM can change it at run time.
    local durability=""
    if [ -n "${PG_SYNCHRONOUS_COMMIT:-}" ]; then durability="-c synchronous_commit=$PG_SYNCHRONOUS_COMMIT"; fi
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 30 \
        -o "-p $PG_PORT -k $run -c listen_addresses=127.0.0.1 -c max_connections=400 $durability" start >/dev/null \
        || die "postgres did not start: see $log"
    head -n1 "$data/postmaster.pid" >"$STATE/pids/postgres.pid"
}

stop_postgres() {
    if pid_alive "$STATE/pids/postgres.pid"; then
        say "stopping postgres"
        as_pg "$PG_BIN/pg_ctl" -D "$(pg_home)/postgres" -m fast -w stop >/dev/null || true
    fi
    rm -f "$STATE/pids/postgres.pid"
}

start_redis() {
    local port
    for port in "${redis_ports[@]}"; do
        pid_alive "$STATE/pids/redis-$port.pid" && continue
        port_busy "$port" && die "port $port is taken: set REDIS_PORTS to free ports"
        say "redis on 127.0.0.1:$port"
        mkdir -p "$STATE/redis-$port"
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
            --dir "$STATE/redis-$port" --pidfile "$STATE/pids/redis-$port.pid" \
            --logfile "$STATE/logs/redis-$port.log"
        wait_for 10 "redis on port $port" redis-cli -h 127.0.0.1 -p "$port" ping
    done
}

stop_redis() {
    local port
    for port in "${redis_ports[@]}"; do
        if pid_alive "$STATE/pids/redis-$port.pid"; then
            say "stopping redis on $port"
            kill "$(cat "$STATE/pids/redis-$port.pid")"
        fi
        rm -f "$STATE/pids/redis-$port.pid"
    done
}

# The etcd members: member N listens for clients on the Nth of ETCD_PORTS and
# for its peers on the Nth of ETCD_PEER_PORTS, and keeps its Raft log and
# keys in $STATE/etcd-N, so a restarted member (or all of them) comes back
# with every revision it had.
etcd_endpoints() {
    local list="" port
    for port in "${etcd_ports[@]}"; do list+="${list:+,}http://127.0.0.1:$port"; done
    echo "$list"
}

start_etcd_member() { # start_etcd_member N
    local n=$1 client=${etcd_ports[$(($1 - 1))]} peer=${etcd_peer_ports[$(($1 - 1))]} cluster="" i
    pid_alive "$STATE/pids/etcd-$n.pid" && return
    port_busy "$client" && die "port $client is taken: set ETCD_PORTS to free ports"
    port_busy "$peer" && die "port $peer is taken: set ETCD_PEER_PORTS to free ports"
    for i in "${!etcd_peer_ports[@]}"; do cluster+="${cluster:+,}etcd-$((i + 1))=http://127.0.0.1:${etcd_peer_ports[$i]}"; done
    say "etcd-$n on 127.0.0.1:$client (peers on $peer)"
    setsid etcd --name "etcd-$n" --data-dir "$STATE/etcd-$n" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "booking-lab" \
        --logger zap --log-outputs stderr >>"$STATE/logs/etcd-$n.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/etcd-$n.pid"
    # A member serves clients only once it has joined a majority; its peer
    # port listens before that, so that the members can find each other.
    wait_for 20 "etcd-$n" port_busy "$peer"
}

start_etcd() { # every member, then wait until the cluster has a leader
    [ "${START_ETCD:-yes}" = yes ] || return 0
    local n
    for n in $(seq 1 ${#etcd_ports[@]}); do start_etcd_member "$n"; done
    wait_for 30 "an etcd leader" etcd_healthy
}

etcd_healthy() { curl -fsS "http://127.0.0.1:${etcd_ports[0]}/health" | grep -q '"health":"true"'; }

stop_etcd_member() { # stop_etcd_member N: a leader hands its leadership over first
    terminate "etcd-$1" "$STATE/pids/etcd-$1.pid"
}

stop_etcd() {
    local n
    for n in $(seq 1 ${#etcd_ports[@]}); do stop_etcd_member "$n"; done
}

etcd_role() { # etcd_role N: leader or follower, from the member's own status
    local status
    status=$(curl -fsS -m 2 -X POST -d '{}' "http://127.0.0.1:${etcd_ports[$(($1 - 1))]}/v3/maintenance/status" 2>/dev/null) || { echo "no answer"; return; }
    local member leader
    member=$(sed -E 's/.*"member_id":"([0-9]+)".*/\1/' <<<"$status")
    leader=$(sed -nE 's/.*"leader":"([0-9]+)".*/\1/p' <<<"$status")
    if [ -z "$leader" ]; then echo "no leader"; elif [ "$member" = "$leader" ]; then echo leader; else echo follower; fi
}

# Replica settings (every variable `booking-service serve --help` names,
# but the ones this script sets per replica) are remembered in the state
# folder when given to any command, and every replica starts with them: one
# that is restarted after a crash (`up`, `start`, the fault lab) runs with
# the settings the cluster was started with, not the defaults.
remember_settings() {
    local file=$STATE/replica.env name
    touch "$file" && chmod 600 "$file" # ADMIN_TOKEN may be among them
    for name in $("$(cat "$STATE/bin.path")" serve --help | grep -o 'env: [A-Z_0-9]*' | cut -d' ' -f2 | sort -u); do
        case $name in DATABASE_URL | REDIS_URL | REDLOCK_URLS | ETCD_ENDPOINTS | INSTANCE_ID | LISTEN_ADDR) continue ;; esac
        [ -n "${!name+set}" ] || continue
        grep -v "^export $name=" "$file" >"$file.new" || true
        printf 'export %s=%q\n' "$name" "${!name}" >>"$file.new"
        mv "$file.new" "$file"
    done
}

worker_threads() { # worker_threads REPLICAS: this machine's cores shared out among them, at least one each
    local n=$(($(nproc) / $1))
    [ "$n" -ge 1 ] || n=1
    echo "$n"
}

start_replica() { # start_replica INDEX [REPLICAS]: REPLICAS (default: the cluster's count) share the cores
    local i=$1 size=${2:-$(replica_count)} port workers
    port=$(replica_port "$i")
    pid_alive "$STATE/pids/replica-$i.pid" && return
    port_busy "$port" && die "port $port is taken: set REPLICA_PORT_BASE to a free range"
    [ "$size" -ge 1 ] || size=1
    # All replicas run on this one machine: each gets its share of the cores
    # as tokio worker threads, not one per core each, which would have them
    # preempt each other (and Postgres) all the time.
    workers=${TOKIO_WORKER_THREADS:-$(worker_threads "$size")}
    say "replica-$i on 127.0.0.1:$port ($workers worker thread$([ "$workers" = 1 ] || echo s))"
    local redlock="" p
    for p in "${redis_ports[@]}"; do redlock+="${redlock:+,}redis://127.0.0.1:$p"; done
    (
        # shellcheck disable=SC1091 # written by remember_settings
        . "$STATE/replica.env"
        DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/booking" \
        REDIS_URL="redis://127.0.0.1:$main_redis" \
        REDLOCK_URLS="$redlock" \
        ETCD_ENDPOINTS="$(etcd_endpoints)" \
        INSTANCE_ID="replica-$i" \
        LISTEN_ADDR="127.0.0.1:$port" \
        TOKIO_WORKER_THREADS="$workers" \
            exec setsid "$(cat "$STATE/bin.path")" serve >>"$STATE/logs/replica-$i.log" 2>&1 </dev/null
    ) &
    echo $! >"$STATE/pids/replica-$i.pid"
}

wait_replica() { # wait_replica INDEX
    local i=$1
    wait_for 60 "replica-$i" curl -fsS "http://127.0.0.1:$(replica_port "$i")/health"
}

stop_replica() { # stop_replica INDEX: SIGTERM, which drains in-flight requests
    terminate "replica-$1" "$STATE/pids/replica-$1.pid"
}

# Passive health checks: three failed attempts within 2 s take a replica out
# of rotation for 2 s (then one request tries it again). Only a refused or
# broken connection, or a timeout, counts as a failure; nothing a client sends
# can cause one (nginx/client-errors.conf), so only a replica that is really
# gone leaves, and one that is killed leaves within a few requests.
write_upstreams() { # write_upstreams COUNT
    local n=$1 i
    : >"$STATE/nginx/upstreams.conf.new"
    for i in $(seq 1 "$n"); do
        echo "server 127.0.0.1:$(replica_port "$i") max_fails=3 fail_timeout=2s;" >>"$STATE/nginx/upstreams.conf.new"
    done
    mv "$STATE/nginx/upstreams.conf.new" "$STATE/nginx/upstreams.conf"
    write_prometheus_targets "$n"
}

write_prometheus_targets() { # file_sd targets, one entry per replica
    local n=$1 i
    mkdir -p "$STATE/prometheus"
    {
        echo "["
        for i in $(seq 1 "$n"); do
            printf '  {"targets": ["127.0.0.1:%s"], "labels": {"cluster": "native"}}' "$(replica_port "$i")"
            [ "$i" -lt "$n" ] && echo "," || echo
        done
        echo "]"
    } >"$STATE/prometheus/targets.json.new"
    mv "$STATE/prometheus/targets.json.new" "$STATE/prometheus/targets.json"
}

render_nginx() {
    mkdir -p "$STATE/nginx/tmp"
    sed -e "s|@STATE@|$STATE|g" -e "s|@LB_PORT@|$LB_PORT|g" "$ROOT/nginx/native.conf.template" >"$STATE/nginx/nginx.conf"
    cp "$ROOT/nginx/proxy.conf" "$ROOT/nginx/stream.conf" "$STATE/nginx/"
    # nginx refuses bodies over the replicas' limit itself (client-errors.conf).
    local limit=${BODY_LIMIT_BYTES:-16384}
    sed -e "s|client_max_body_size 16k;|client_max_body_size $limit;|" -e "s|larger than 16384 bytes|larger than $limit bytes|" \
        "$ROOT/nginx/client-errors.conf" >"$STATE/nginx/client-errors.conf"
}

nginx_cmd() { nginx -e "$STATE/logs/nginx-error.log" -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" "$@"; }

start_nginx() {
    render_nginx
    nginx_cmd -t -q || die "nginx rejected $STATE/nginx/nginx.conf"
    if pid_alive "$STATE/nginx/nginx.pid"; then
        nginx_cmd -s reload
        return
    fi
    port_busy "$LB_PORT" && die "port $LB_PORT is taken: set LB_PORT to a free port"
    say "nginx on 127.0.0.1:$LB_PORT"
    nginx_cmd
    wait_for 10 "nginx" curl -fsS "http://127.0.0.1:$LB_PORT/nginx-health"
}

reload_nginx() {
    nginx_cmd -t -q || die "nginx rejected the new upstream list"
    nginx_cmd -s reload
    # Old workers finish their requests and exit; wait until only the new
    # generation serves, so a replica removed from the list gets no more work.
    sleep 1
}

stop_nginx() {
    if pid_alive "$STATE/nginx/nginx.pid"; then
        say "stopping nginx"
        nginx_cmd -s quit || true
        for _ in $(seq 50); do pid_alive "$STATE/nginx/nginx.pid" || break; sleep 0.1; done
    fi
}

start_prometheus() {
    [ "${START_PROMETHEUS:-yes}" = yes ] || return 0
    command -v prometheus >/dev/null || { say "prometheus not installed: skipping (apt-get install prometheus)"; return; }
    pid_alive "$STATE/pids/prometheus.pid" && return
    if port_busy "$PROMETHEUS_PORT"; then
        say "port $PROMETHEUS_PORT is taken: skipping Prometheus (set PROMETHEUS_PORT)"
        return
    fi
    sed -e "s|@TARGETS@|$STATE/prometheus/targets.json|g" "$ROOT/prometheus/native.yml" >"$STATE/prometheus/prometheus.yml"
    say "prometheus on 127.0.0.1:$PROMETHEUS_PORT"
    setsid prometheus --config.file="$STATE/prometheus/prometheus.yml" --storage.tsdb.path="$STATE/prometheus/data" \
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" --storage.tsdb.retention.time=1d \
        >>"$STATE/logs/prometheus.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/prometheus.pid"
}

stop_prometheus() {
    if pid_alive "$STATE/pids/prometheus.pid"; then
        say "stopping prometheus"
        kill "$(cat "$STATE/pids/prometheus.pid")"
    fi
    rm -f "$STATE/pids/prometheus.pid"
}

# --- commands --------------------------------------------------------------

scale_to() { # scale_to N: new replicas join after they are healthy; leaving ones go after nginx forgets them
    local target=$1 current i
    current=$(replica_count)
    [[ "$target" =~ ^[0-9]+$ ]] && [ "$target" -ge 1 ] && [ "$target" -le $MAX_REPLICAS ] \
        || die "replica count must be a number from 1 to $MAX_REPLICAS, got '$target'"
    if [ "$target" -gt "$current" ]; then
        for i in $(seq $((current + 1)) "$target"); do start_replica "$i" "$target"; done
        for i in $(seq $((current + 1)) "$target"); do wait_replica "$i"; done
        write_upstreams "$target"
        echo "$target" >"$STATE/replicas.count"
        if pid_alive "$STATE/nginx/nginx.pid"; then reload_nginx; fi
    elif [ "$target" -lt "$current" ]; then
        write_upstreams "$target"
        echo "$target" >"$STATE/replicas.count"
        reload_nginx
        for i in $(seq $((target + 1)) "$current"); do stop_replica "$i"; done
    fi
    say "$target replicas behind http://127.0.0.1:$LB_PORT"
}

cmd_up() { # up [N]: starts what is down and leaves what runs alone
    local n=${1:-} i
    require_binaries
    mkdir -p "$STATE/logs" "$STATE/pids" "$STATE/nginx"
    booking_bin >"$STATE/bin.path"
    remember_settings
    start_postgres
    start_redis
    start_etcd
    # One replica migrates first, so the others do not queue on the migration lock.
    "$(cat "$STATE/bin.path")" migrate --database-url "postgres://postgres@127.0.0.1:$PG_PORT/booking" >/dev/null
    # Repair: a replica that crashed comes back on its own port, so nginx
    # (whose list still names it) routes to it again.
    for i in $(seq 1 "$(replica_count)"); do
        if ! pid_alive "$STATE/pids/replica-$i.pid"; then
            start_replica "$i"
            wait_replica "$i"
        fi
    done
    if [ -z "$n" ]; then
        n=$(replica_count)
        [ "$n" -gt 0 ] || n=3
    fi
    scale_to "$n"
    start_nginx
    start_prometheus
    cmd_status
}

# --- faults ----------------------------------------------------------------

component_pids() { # component_pids NAME: the process and, for postgres and nginx, its children
    local name=$1 pidfile pid
    case "$name" in
        replica-[0-9]*) pidfile=$STATE/pids/$name.pid ;;
        redis-[0-9]*) pidfile=$STATE/pids/$name.pid ;;
        etcd-[0-9]*) pidfile=$STATE/pids/$name.pid ;;
        postgres) pidfile=$STATE/pids/postgres.pid ;;
        nginx) pidfile=$STATE/nginx/nginx.pid ;;
        *) die "unknown component '$name': use a NAME that status prints (replica-2, redis-${redis_ports[1]:-6381}, etcd-2, postgres, nginx)" ;;
    esac
    pid_alive "$pidfile" || die "$name is not running (scripts/cluster.sh status)"
    pid=$(cat "$pidfile")
    echo "$pid"
    case "$name" in
        postgres | nginx) pgrep -P "$pid" || true ;;
    esac
}

is_paused() { # is_paused PIDFILE: the process is stopped (state T)
    [ -f "$1" ] && [ "$(awk '{print $3}' "/proc/$(cat "$1")/stat" 2>/dev/null)" = T ]
}

cmd_signal() { # cmd_signal VERB NAME
    local verb=$1 name=${2:-} signal pids
    [ -n "$name" ] || die "usage: scripts/cluster.sh $verb NAME"
    case "$verb" in kill) signal=KILL ;; pause) signal=STOP ;; resume) signal=CONT ;; esac
    # A crash of Postgres kills the postmaster and every backend: freeze the
    # postmaster first, so that it forks none between the listing and the kill.
    if [ "$verb" = kill ] && [ "$name" = postgres ]; then kill -s STOP "$(component_pids postgres | head -n1)"; fi
    pids=$(component_pids "$name")
    # shellcheck disable=SC2086 # one pid per word
    kill -s "$signal" $pids
    case "$verb" in
        kill)
            # Gone, not merely dying: until it is reaped, a restart would
            # find its pid still answering (Postgres refuses to start then).
            local pid
            for pid in $pids; do
                for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
            done
            say "killed $name (SIGKILL, pids $(echo $pids)); scripts/cluster.sh up or start $name brings it back"
            if [ "$name" = postgres ]; then rm -f "$STATE/pids/postgres.pid"; fi
            ;;
        pause) say "paused $name (SIGSTOP): it holds its connections and answers nothing; scripts/cluster.sh resume $name" ;;
        resume) say "resumed $name (SIGCONT)" ;;
    esac
}

cmd_stop() { # cmd_stop NAME: graceful
    local name=${1:-}
    case "$name" in
        replica-[0-9]*) stop_replica "${name#replica-}" ;;
        redis-[0-9]*)
            pid_alive "$STATE/pids/$name.pid" || die "$name is not running"
            say "stopping $name"
            kill -TERM "$(cat "$STATE/pids/$name.pid")"
            for _ in $(seq 50); do pid_alive "$STATE/pids/$name.pid" || break; sleep 0.1; done
            rm -f "$STATE/pids/$name.pid"
            ;;
        etcd-[0-9]*)
            pid_alive "$STATE/pids/$name.pid" || die "$name is not running"
            stop_etcd_member "${name#etcd-}"
            ;;
        postgres) stop_postgres ;;
        nginx) stop_nginx ;;
        *) die "usage: scripts/cluster.sh stop NAME (replica-N, redis-PORT, etcd-N, postgres, nginx)" ;;
    esac
    say "stopped $name; scripts/cluster.sh start $name (or up) brings it back"
}

cmd_start() { # cmd_start NAME
    local name=${1:-} i
    require_binaries
    case "$name" in
        replica-[0-9]*)
            remember_settings
            i=${name#replica-}
            [ "$i" -ge 1 ] && [ "$i" -le "$(replica_count)" ] || die "$name is not part of the cluster (it has $(replica_count) replicas; use scale)"
            start_replica "$i"
            wait_replica "$i"
            ;;
        redis-[0-9]*)
            [[ " ${redis_ports[*]} " == *" ${name#redis-} "* ]] || die "$name is not one of the cluster's Redis nodes (${redis_ports[*]})"
            start_redis
            ;;
        etcd-[0-9]*)
            i=${name#etcd-}
            [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -ge 1 ] && [ "$i" -le ${#etcd_ports[@]} ] || die "$name is not one of the cluster's etcd members (etcd-1 to etcd-${#etcd_ports[@]})"
            start_etcd_member "$i"
            ;;
        postgres) start_postgres ;;
        nginx) start_nginx ;;
        *) die "usage: scripts/cluster.sh start NAME (replica-N, redis-PORT, etcd-N, postgres, nginx)" ;;
    esac
    say "started $name"
}

cmd_down() {
    local i
    stop_prometheus
    stop_nginx
    for i in $(seq 1 $MAX_REPLICAS); do stop_replica "$i"; done
    echo 0 >"$STATE/replicas.count" 2>/dev/null || true
    stop_redis
    stop_etcd
    stop_postgres
    local home
    home=$(cat "$STATE/postgres.home" 2>/dev/null || echo "$STATE")
    if [ "$home" = "$STATE" ]; then
        say "cluster stopped (data kept in $STATE; rm -rf it for a fresh start)"
    else
        say "cluster stopped (data kept in $STATE and, for Postgres, $home; rm -rf both for a fresh start)"
    fi
}

process_state() { # process_state PIDFILE: up, paused or down
    if is_paused "$1"; then echo paused; elif pid_alive "$1"; then echo up; else echo down; fi
}

cmd_status() {
    local i port state health
    printf '%-12s %-22s %s\n' COMPONENT ADDRESS STATE
    state=$(process_state "$STATE/pids/postgres.pid")
    if [ "$state" = up ]; then
        state="up, synchronous_commit=$(as_pg "$PG_BIN/psql" -h "$(pg_home)/run" -p "$PG_PORT" -U postgres -Atc 'SHOW synchronous_commit' 2>/dev/null || echo '?')"
    fi
    printf '%-12s %-22s %s\n' postgres "127.0.0.1:$PG_PORT" "$state"
    for port in "${redis_ports[@]}"; do
        state=$(process_state "$STATE/pids/redis-$port.pid")
        printf '%-12s %-22s %s\n' "redis-$port" "127.0.0.1:$port" "$state"
    done
    if [ "${START_ETCD:-yes}" = yes ] || [ -n "$(ls "$STATE"/pids/etcd-*.pid 2>/dev/null)" ]; then
        for i in $(seq 1 ${#etcd_ports[@]}); do
            state=$(process_state "$STATE/pids/etcd-$i.pid")
            if [ "$state" = up ]; then state="up, $(etcd_role "$i")"; fi
            printf '%-12s %-22s %s\n' "etcd-$i" "127.0.0.1:${etcd_ports[$((i - 1))]}" "$state"
        done
    fi
    for i in $(seq 1 "$(replica_count)"); do
        port=$(replica_port "$i")
        if is_paused "$STATE/pids/replica-$i.pid"; then
            state=paused
        elif health=$(curl -fsS -m 2 "http://127.0.0.1:$port/health" 2>/dev/null); then
            state="up, strategy $(sed -E 's/.*"strategy":"([a-z]+)".*/\1/' <<<"$health")"
        else
            state=down
        fi
        printf '%-12s %-22s %s\n' "replica-$i" "127.0.0.1:$port" "$state"
    done
    state=$(process_state "$STATE/nginx/nginx.pid")
    printf '%-12s %-22s %s\n' nginx "127.0.0.1:$LB_PORT" "$state"
    pid_alive "$STATE/pids/prometheus.pid" && state=up || state="down"
    printf '%-12s %-22s %s\n' prometheus "127.0.0.1:$PROMETHEUS_PORT" "$state"
}

cmd_logs() {
    local name=${1:-}
    [ -d "$STATE/logs" ] || die "no logs yet: scripts/cluster.sh up"
    if [ -n "$name" ]; then
        [ -f "$STATE/logs/$name.log" ] || die "no log named $name (have: $(cd "$STATE/logs" && ls | sed 's/\.log$//' | tr '\n' ' '))"
        tail -n 100 "$STATE/logs/$name.log"
    else
        tail -n 20 "$STATE"/logs/*.log
    fi
}

case "${1:-}" in
    up) shift; cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    scale)
        [ $# -eq 2 ] || die "usage: scripts/cluster.sh scale N"
        [ "$(replica_count)" -gt 0 ] || die "the cluster is not up: scripts/cluster.sh up"
        remember_settings
        scale_to "$2"
        ;;
    logs) shift; cmd_logs "$@" ;;
    kill | pause | resume) cmd_signal "$1" "${2:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    start) cmd_start "${2:-}" ;;
    render-nginx) mkdir -p "$STATE/logs" "$STATE/nginx"; render_nginx; write_upstreams "${2:-3}"; echo "$STATE/nginx/nginx.conf" ;;
    *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
