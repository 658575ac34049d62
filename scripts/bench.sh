#!/usr/bin/env bash
# How close does the cluster run to the database underneath it, and what
# does a booking cost in CPU?
#
#   scripts/bench.sh            (BENCH_SECONDS=10, BENCH_CLIENTS=32, BENCH_RUNS=3)
#   BENCH_LOCKS=yes scripts/bench.sh   also (e): the lock strategies side by side
#   BENCH_POOL_SWEEP="3 6 12 24 48" scripts/bench.sh
#                               also (f): (b)'s pessimistic run for each total
#                               of booking connections (DATABASE_CONNECTION_BUDGET)
#
# On a cluster of its own (ports 8100-8110, 15532, 6390-6392; stopped at the
# end), each of BENCH_RUNS runs measures:
#   (a) pgbench: the SQL of `pessimistic` and `none`, statement for statement
#       as the service sends it, in both protocols: -M prepared (what the
#       service does) and -M simple; and one conditional UPDATE of a fresh
#       seat; with Postgres' CPU per transaction;
#   (b) wrk + Lua: bookings of fresh seats through nginx and three replicas,
#       hold 0, for the same strategies;
# then, on a cluster of one replica, (d) wrk straight to it, `pessimistic`,
# hold 0; and on three replicas with the 50 ms hold, (c) wrk through nginx,
# how near the hold-bound rate (clients / 50 ms) each run gets. With
# BENCH_LOCKS=yes, (e): wrk through nginx at hold 0 under each strategy that
# takes a lock across replicas (distributed, redlock, fenced, etcd), with the
# CPU its lock service spends per booking (the three Redis nodes, or the three
# etcd members).
# The replicas share DATABASE_CONNECTION_BUDGET booking connections (their
# default unless it is set); (c) gets twice CLIENTS, because each booking
# keeps its connection through the hold. The report prints each replica's
# pool. With BENCH_POOL_SWEEP, (f): (b)'s pessimistic run once per budget
# listed, with Postgres' CPU per booking against pgbench's.
# During (b), (c) and (d) it reads the CPU time of the replicas, Postgres
# and nginx from /proc and prints it per request (µs): a figure that stays
# put on a noisy machine. Every figure is the median of the runs; the
# targets are printed as met or MISSED. ADMIN_TOKEN passes through.
# Postgres runs with durable commits (synchronous_commit=on) unless
# PG_SYNCHRONOUS_COMMIT says otherwise; the report says which.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-32}
RUNS=${BENCH_RUNS:-3}
export CLUSTER_STATE=${BENCH_STATE:-$ROOT/.cluster-bench}
export LB_PORT=8100 REPLICA_PORT_BASE=8101 PG_PORT=15532 REDIS_PORTS="6390 6391 6392" START_PROMETHEUS=no
export ETCD_PORTS="2479 2489 2499" ETCD_PEER_PORTS="2480 2490 2500"
export RUST_LOG=warn
BASE=http://127.0.0.1:$LB_PORT
WORK=$(mktemp -d)
SEATS_PER_ROW=1000
HZ=$(getconf CLK_TCK)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for tool in pgbench wrk curl jq; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install postgresql-client wrk curl jq; or scripts/prereqs.sh as root)"
done

cleanup() {
    say "stopping the benchmark cluster"
    "$ROOT/scripts/cluster.sh" down >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A budget given to the script applies to every cluster it starts but (c)'s
# and (f)'s, which set their own.
USER_BUDGET=${DATABASE_CONNECTION_BUDGET:-}
unset DATABASE_CONNECTION_BUDGET

cluster_up() { # cluster_up HOLD_MS [REPLICAS] [BUDGET]: BUDGET booking connections in all (default: the replicas' own default)
    local replicas=${2:-3} budget=${3:-$USER_BUDGET} settings=(HOLD_MS="$1")
    "$ROOT/scripts/cluster.sh" down >/dev/null 2>&1 || true
    # cluster.sh remembers replica settings across down and up: forget the
    # last cluster's, so an unset budget means the replicas' default.
    rm -f "$CLUSTER_STATE/replica.env"
    if [ -n "$budget" ]; then settings+=(DATABASE_CONNECTION_BUDGET="$budget"); fi
    env "${settings[@]}" "$ROOT/scripts/cluster.sh" up "$replicas" >/dev/null
    POOLS=$(pool_sizes)
    say "cluster with $replicas replica(s), HOLD_MS=$1, booking pools $POOLS"
}

pool_sizes() { # each replica's booking pool, from the heartbeats: "3+3+2 = 8"
    local sizes
    # The replicas that started first shrink to their share within a
    # heartbeat interval (2 s) of the last one's start, and say so in their
    # next heartbeat.
    sleep 5
    sizes=$(api "$BASE/admin/cluster" | jq -r '[.replicas[].booking_connections] | "\(map(tostring) | join("+")) = \(add)"')
    echo "$sizes"
}

api() { # curl with JSON, and the admin token when the replicas have one (ADMIN_TOKEN passes through)
    local auth=()
    if [ -n "${ADMIN_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $ADMIN_TOKEN"); fi
    curl -fsS -H 'Content-Type: application/json' "${auth[@]}" "$@"
}

new_event() { # new_event NAME ROWS -> id
    api -X POST "$BASE/admin/events" -d "{\"name\":\"$1\",\"rows\":$2,\"seats_per_row\":$SEATS_PER_ROW}" | jq -r .event.id
}

fresh_seats_event() { # fresh_seats_event NAME SEATS -> id: more seats than POST /admin/events makes (one row, "C1", "C2", ...)
    psql_bench -c "WITH event AS (
            INSERT INTO events (name, venue, event_date, total_seats) VALUES ('$1', 'bench', now(), $2) RETURNING id
        ), seats AS (
            INSERT INTO seats (event_id, seat_number, section, row_name)
            SELECT event.id, 'C' || n, 'General', 'C' FROM event, generate_series(1, $2) AS n
        )
        SELECT id FROM event"
}

psql_bench() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d booking -qtAX "$@"; }

# --- CPU time from /proc -----------------------------------------------------

ticks_of() { # ticks_of PID...: utime + stime (+ reaped children) of each, summed
    local pid total=0 t
    for pid in "$@"; do
        t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}

group_ticks() { # group_ticks replicas|postgres|nginx
    local pids=()
    case $1 in
        replicas) for f in "$CLUSTER_STATE"/pids/replica-*.pid; do pids+=("$(cat "$f")"); done ;;
        postgres) local pm; pm=$(cat "$CLUSTER_STATE/pids/postgres.pid"); pids=("$pm" $(pgrep -P "$pm" || true)) ;;
        nginx) local master; master=$(cat "$CLUSTER_STATE/nginx/nginx.pid"); pids=("$master" $(pgrep -P "$master" || true)) ;;
        redis) for f in "$CLUSTER_STATE"/pids/redis-*.pid; do pids+=("$(cat "$f")"); done ;;
        etcd) for f in "$CLUSTER_STATE"/pids/etcd-*.pid; do pids+=("$(cat "$f")"); done ;;
    esac
    ticks_of "${pids[@]}"
}

# --- (a) pgbench --------------------------------------------------------------

# pgbench SCRIPT MODE -> "tps p50_ms p99_ms postgres_us"
pgbench_run() {
    local script=$1 mode=$2 event first last epoch
    if [ "$script" = conditional ]; then
        # A conditional UPDATE runs far faster than a booking, and must never
        # find its seat booked: room for 100 000 transactions a second.
        event=$(fresh_seats_event "pgbench $script $mode" $((100000 * SECONDS_EACH)))
    else
        event=$(new_event "pgbench $script $mode" 200)
    fi
    read -r first last < <(psql_bench -F ' ' -c "SELECT min(id), max(id) FROM seats WHERE event_id = $event")
    epoch=$(psql_bench -c "SELECT epoch FROM strategy_epoch")
    psql_bench -c "DROP SEQUENCE IF EXISTS bench_fresh_seat; CREATE SEQUENCE bench_fresh_seat MINVALUE 0 START 0" >/dev/null
    # A booking's write is the same for every strategy: one file, appended.
    cat "$ROOT/scripts/bench/$script.sql" >"$WORK/script.sql"
    case $script in pessimistic | none) cat "$ROOT/scripts/bench/write_booking.sql" >>"$WORK/script.sql" ;; esac
    rm -f "$WORK"/pgbench_log.*
    local p0 p1
    p0=$(group_ticks postgres)
    (cd "$WORK" && pgbench -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -M "$mode" -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -l \
        -D event="$event" -D first="$first" -D last="$last" -D epoch="$epoch" -f "$WORK/script.sql" booking >"$WORK/pgbench.out" 2>&1) \
        || { cat "$WORK/pgbench.out" >&2; die "pgbench failed"; }
    p1=$(group_ticks postgres)
    local tps transactions
    transactions=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$WORK/pgbench.out")
    tps=$(printf '%.0f' "$(sed -nE 's/^tps = ([0-9.]+) .*without initial.*/\1/p' "$WORK/pgbench.out")")
    if [ "$script" = conditional ]; then
        # Every transaction must have booked a seat of its own.
        local booked
        booked=$(psql_bench -c "SELECT count(*) FROM seats WHERE event_id = $event AND is_booked")
        [ "$booked" = "$transactions" ] || die "conditional: $transactions transactions booked $booked seats: some found their seat taken"
    fi
    # Per-transaction latency (µs) is the third column of pgbench's log.
    cat "$WORK"/pgbench_log.* | awk '{print $3}' | sort -n >"$WORK/latencies"
    api -X DELETE "$BASE/admin/events/$event" >/dev/null
    echo "$tps $(percentile 50) $(percentile 99) $(awk -v p=$((p1 - p0)) -v hz="$HZ" -v n="$transactions" 'BEGIN {printf "%.0f", p * 1e6 / hz / n}')"
}

percentile() { # percentile P over $WORK/latencies (µs) -> ms
    awk -v p="$1" '{v[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; printf "%.2f", v[i]/1000}' "$WORK/latencies"
}

# --- (b), (c), (d) wrk --------------------------------------------------------

# RSS of every replica, sampled while wrk runs; the largest, in MiB.
sample_rss() {
    local max=0 pid rss
    while [ -f "$WORK/sampling" ]; do
        for pidfile in "$CLUSTER_STATE"/pids/replica-*.pid; do
            pid=$(cat "$pidfile")
            rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
            [ "${rss:-0}" -gt "$max" ] && max=$rss
        done
        sleep 0.5
    done
    echo $((max / 1024)) >"$WORK/rss"
}

# wrk_run URL STRATEGY -> "rps p50_ms p99_ms errors rss_mib replica_us postgres_us nginx_us"
wrk_run() {
    local url=$1 strategy=$2 event
    api -X POST "$BASE/admin/strategy" -d "{\"strategy\":\"$strategy\"}" >/dev/null
    event=$(new_event "wrk $strategy" 200)
    touch "$WORK/sampling"
    sample_rss &
    local sampler=$!
    local r0 p0 n0 r1 p1 n1
    r0=$(group_ticks replicas); p0=$(group_ticks postgres); n0=$(group_ticks nginx)
    wrk -t 2 -c "$CLIENTS" -d "${SECONDS_EACH}s" --timeout 10s -s "$ROOT/scripts/bench/book.lua" "$url" \
        -- "$event" "$SEATS_PER_ROW" 2 >"$WORK/wrk.out" 2>&1
    r1=$(group_ticks replicas); p1=$(group_ticks postgres); n1=$(group_ticks nginx)
    rm -f "$WORK/sampling"
    wait "$sampler"
    local line
    line=$(grep WRK_RESULT "$WORK/wrk.out") || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
    api -X DELETE "$BASE/admin/events/$event" >/dev/null
    echo "$line" | awk -v rss="$(cat "$WORK/rss")" -v hz="$HZ" -v r=$((r1 - r0)) -v p=$((p1 - p0)) -v n=$((n1 - n0)) '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        us = 1e6 / hz / v["requests"]
        printf "%.0f %.2f %.2f %d %d %.0f %.0f %.0f\n", v["requests"] / (v["duration_us"] / 1e6), v["p50_us"] / 1000, v["p99_us"] / 1000,
            v["errors_status"] + v["errors_connect"], rss, r * us, p * us, n * us
    }'
}

median() { # median VALUES... (numbers)
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'
}

column() { # column N "LINE" "LINE"...: the Nth field of each line
    local n=$1; shift
    printf '%s\n' "$@" | awk -v n="$n" '{print $n}'
}

med() { # med N "LINE"...: median of field N
    local n=$1; shift
    # shellcheck disable=SC2046
    median $(column "$n" "$@")
}

# --- the runs -------------------------------------------------------------------

cluster_up 0
pools_b=$POOLS
commit_setting=$(psql_bench -c 'SHOW synchronous_commit')
say "benchmark: $RUNS runs of ${SECONDS_EACH}s each, $CLIENTS clients, on $(nproc) cores, synchronous_commit=$commit_setting"
declare -A A B D
for run in $(seq "$RUNS"); do
    for script in pessimistic none conditional; do
        for mode in prepared simple; do
            say "run $run (a) pgbench -M $mode: $script"
            A[$script.$mode]+="$(pgbench_run "$script" "$mode")"$'\n'
        done
    done
    for strategy in pessimistic none; do
        say "run $run (b) wrk through nginx: $strategy, hold 0"
        B[$strategy]+="$(wrk_run "$BASE" "$strategy")"$'\n'
    done
done
# One replica on its own: what a single replica can do when it has the
# machine's cores to itself (in a cluster of three each gets a third).
cluster_up 0 1
pools_d=$POOLS
for run in $(seq "$RUNS"); do
    say "run $run (d) wrk straight to the one replica: pessimistic, hold 0"
    D[pessimistic]+="$(wrk_run "http://127.0.0.1:$REPLICA_PORT_BASE" pessimistic)"$'\n'
done
declare -A E
if [ "${BENCH_LOCKS:-no}" = yes ]; then
    cluster_up 0
    for run in $(seq "$RUNS"); do
        for strategy in distributed redlock fenced etcd; do
            say "run $run (e) wrk through nginx: $strategy, hold 0"
            service=redis
            [ "$strategy" = etcd ] && service=etcd
            s0=$(group_ticks "$service")
            line=$(wrk_run "$BASE" "$strategy")
            s1=$(group_ticks "$service")
            # The lock service's CPU per booking, from the run's rate and length.
            E[$strategy]+="$line $(awk -v s=$((s1 - s0)) -v hz="$HZ" -v rps="${line%% *}" -v t="$SECONDS_EACH" 'BEGIN {printf "%.0f", s * 1e6 / hz / (rps * t)}')"$'\n'
        done
    done
fi
declare -A F
if [ -n "${BENCH_POOL_SWEEP:-}" ]; then
    for run in $(seq "$RUNS"); do
        for budget in $BENCH_POOL_SWEEP; do
            cluster_up 0 3 "$budget"
            say "run $run (f) wrk through nginx: pessimistic, hold 0, $budget booking connections in all"
            F[$budget]+="$(wrk_run "$BASE" pessimistic) $POOLS"$'\n'
        done
    done
fi
# With the hold, each booking keeps its connection (and its row lock) for
# 50 ms: CLIENTS in flight need CLIENTS connections, whatever the cores
# (Little's law: connections busy = bookings a second x seconds each). The
# budget here is twice that, because nginx does not spread the requests in
# flight evenly at every instant.
cluster_up 50 3 "$((2 * CLIENTS))"
pools_c=$POOLS
C=""
for run in $(seq "$RUNS"); do
    say "run $run (c) wrk through nginx: pessimistic, hold 50 ms"
    C+="$(wrk_run "$BASE" pessimistic)"$'\n'
done

lines() { printf '%s' "$1" | sed '/^$/d'; }
mapfile -t c_runs < <(lines "$C")

echo
echo "## The database (a) and the cluster (b, c, d): medians of $RUNS runs of ${SECONDS_EACH}s, $CLIENTS clients, $(nproc) cores"
echo
echo "Postgres ran with synchronous_commit=$commit_setting (pgbench and the service alike; PG_SYNCHRONOUS_COMMIT=off measures the other way)."
echo
echo "Booking pools (each replica's share of DATABASE_CONNECTION_BUDGET): (b) $pools_b, (d) $pools_d, (c) $pools_c; pgbench ran $CLIENTS clients."
echo
echo "| run | req/s | p50 ms | p99 ms | errors | max replica RSS MiB | replica CPU µs/req | Postgres CPU µs/req | nginx CPU µs/req |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for script in pessimistic none conditional; do
    for mode in prepared simple; do
        mapfile -t runs < <(lines "${A[$script.$mode]}")
        echo "| (a) pgbench -M $mode, $script SQL | $(med 1 "${runs[@]}") | $(med 2 "${runs[@]}") | $(med 3 "${runs[@]}") | | | | $(med 4 "${runs[@]}") | |"
    done
done
row() { # row LABEL LINES...
    local label=$1; shift
    echo "| $label | $(med 1 "$@") | $(med 2 "$@") | $(med 3 "$@") | $(med 4 "$@") | $(med 5 "$@") | $(med 6 "$@") | $(med 7 "$@") | $(med 8 "$@") |"
}
for strategy in pessimistic none; do
    mapfile -t runs < <(lines "${B[$strategy]}")
    row "(b) nginx + 3 replicas, $strategy, hold 0" "${runs[@]}"
done
mapfile -t d_runs < <(lines "${D[pessimistic]}")
row "(d) one replica alone, direct, pessimistic, hold 0" "${d_runs[@]}"
row "(c) nginx + 3 replicas, pessimistic, hold 50 ms" "${c_runs[@]}"
echo
if [ "${BENCH_LOCKS:-no}" = yes ]; then
    echo "## (e) The locks side by side: nginx + 3 replicas, hold 0, fresh seats (medians of $RUNS runs)"
    echo
    echo "| strategy | req/s | p50 ms | p99 ms | errors | replica CPU µs/req | Postgres CPU µs/req | lock service CPU µs/req |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for strategy in distributed redlock fenced etcd; do
        mapfile -t runs < <(lines "${E[$strategy]}")
        echo "| $strategy | $(med 1 "${runs[@]}") | $(med 2 "${runs[@]}") | $(med 3 "${runs[@]}") | $(med 4 "${runs[@]}") | $(med 6 "${runs[@]}") | $(med 7 "${runs[@]}") | $(med 9 "${runs[@]}") |"
    done
    echo
    echo "The lock service is the three Redis nodes for distributed, redlock and fenced (distributed and fenced use the first), and the three etcd members for etcd."
    echo
fi

if [ -n "${BENCH_POOL_SWEEP:-}" ]; then
    mapfile -t a_prepared < <(lines "${A[pessimistic.prepared]}")
    echo "## (f) The pool: nginx + 3 replicas, pessimistic, hold 0, by booking connections in all (medians of $RUNS runs)"
    echo
    echo "| connections in all | per replica | req/s | of pgbench -M prepared | p50 ms | p99 ms | errors | replica CPU µs/req | Postgres CPU µs/req | Postgres : pgbench |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for budget in $BENCH_POOL_SWEEP; do
        mapfile -t runs < <(lines "${F[$budget]}")
        rps=$(med 1 "${runs[@]}"); pg=$(med 7 "${runs[@]}")
        echo "| $budget | $(column 9 "${runs[0]}") | $rps | $(awk -v x="$rps" -v y="$(med 1 "${a_prepared[@]}")" 'BEGIN {printf "%.2f", x / y}') | $(med 2 "${runs[@]}") | $(med 3 "${runs[@]}") | $(med 4 "${runs[@]}") | $(med 6 "${runs[@]}") | $pg | $(awk -v x="$pg" -v y="$(med 4 "${a_prepared[@]}")" 'BEGIN {printf "%.2f", x / y}') |"
    done
    echo
    echo "pgbench -M prepared ran the same SQL with $CLIENTS clients: $(med 1 "${a_prepared[@]}") transactions/s, Postgres $(med 4 "${a_prepared[@]}") µs each."
    echo
fi

mapfile -t b_runs < <(lines "${B[pessimistic]}")
mapfile -t a_prepared < <(lines "${A[pessimistic.prepared]}")
mapfile -t a_simple < <(lines "${A[pessimistic.simple]}")
prepared=$(med 1 "${a_prepared[@]}"); simple=$(med 1 "${a_simple[@]}")
b_rps=$(med 1 "${b_runs[@]}"); d_rps=$(med 1 "${d_runs[@]}")
replica_us=$(med 6 "${b_runs[@]}"); postgres_us=$(med 7 "${b_runs[@]}"); nginx_us=$(med 8 "${b_runs[@]}")
d_replica_us=$(med 6 "${d_runs[@]}"); d_postgres_us=$(med 7 "${d_runs[@]}")
ratio() { awk -v x="$1" -v y="$2" 'BEGIN {printf "%.2f", x / y}'; }

echo "## Where a pessimistic booking's CPU goes (medians)"
echo
echo "- (b) through nginx: replicas $replica_us µs (the three summed), Postgres $postgres_us µs, nginx $nginx_us µs per booking;"
echo "  replicas : Postgres = $(ratio "$replica_us" "$postgres_us")"
echo "- (d) one replica alone: the replica $d_replica_us µs, Postgres $d_postgres_us µs per booking;"
echo "  replica : Postgres = $(ratio "$d_replica_us" "$d_postgres_us")"
echo "- (b) is $(ratio "$b_rps" "$simple") of pgbench -M simple and $(ratio "$b_rps" "$prepared") of -M prepared for the same SQL"
echo

verdict() { # verdict DESCRIPTION OK(0/1)
    if [ "$2" = 1 ]; then echo "- met: $1"; else echo "- MISSED: $1"; fi
}
at_least() { awk -v x="$1" -v y="$2" 'BEGIN {print (x >= y) ? 1 : 0}'; }
echo "## Targets (medians of $RUNS runs)"
verdict "nginx + 3 replicas >= 0.6 of pgbench -M prepared, pessimistic ($(ratio "$b_rps" "$prepared"))" "$(at_least "$(ratio "$b_rps" "$prepared")" 0.6)"
verdict "one replica alone, direct >= 0.8 of pgbench -M prepared, pessimistic ($(ratio "$d_rps" "$prepared"))" "$(at_least "$(ratio "$d_rps" "$prepared")" 0.8)"
# The replica's own cost per booking, on the run where one replica serves
# every booking (d): the three-replica sum (b) also counts each replica's
# share of the others' live feed and their idle timers.
verdict "replica CPU <= 80 µs per pessimistic booking at hold 0, one replica alone ($d_replica_us µs)" "$(at_least 80 "$d_replica_us")"
bound=$(awk -v c="$CLIENTS" 'BEGIN {print c / 0.050}')
worst=$(column 1 "${c_runs[@]}" | sort -g | head -n1)
verdict "hold 50 ms, $CLIENTS in flight: every run >= 90 % of the hold-bound $bound req/s (worst $worst req/s, $(awk -v r="$worst" -v b="$bound" 'BEGIN {printf "%.0f", 100 * r / b}') %)" \
    "$(at_least "$worst" "$(awk -v b="$bound" 'BEGIN {print 0.9 * b}')")"
max_rss=$(printf '%s\n' "${b_runs[@]}" "${d_runs[@]}" "${c_runs[@]}" | awk '{if ($5 > m) m = $5} END {print m}')
verdict "every replica's RSS <= 30 MiB under load (max $max_rss MiB)" "$(at_least 30 "$max_rss")"
echo
echo "Everything shares $(nproc) cores: pgbench or wrk, nginx, three replicas, Postgres and Redis."
