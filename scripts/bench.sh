#!/usr/bin/env bash
# How close does the cluster run to the database underneath it?
#
#   scripts/bench.sh            (BENCH_SECONDS=10, BENCH_CLIENTS=32)
#
# On a cluster of its own (ports 8100-8110, 55532, 6390-6392; stopped at the
# end), one run on this machine measures:
#   (a) pgbench: the booking SQL of `pessimistic` and `none`, and one
#       conditional UPDATE, straight against Postgres;
#   (b) wrk + Lua: uncontended bookings (a new seat per request) through
#       nginx and three replicas with the hold at 0, for the same strategies;
#   (c) wrk again with the 50 ms hold: how near the hold-bound rate
#       (clients / 50 ms) the cluster gets.
# It prints throughput, p50/p99, replica memory, the load generator's CPU,
# the ratio (b)/(a), and says which targets were met and which were not.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_EACH=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-32}
export CLUSTER_STATE=${BENCH_STATE:-$ROOT/.cluster-bench}
export LB_PORT=8100 REPLICA_PORT_BASE=8101 PG_PORT=55532 REDIS_PORTS="6390 6391 6392" START_PROMETHEUS=no
export RUST_LOG=warn DATABASE_MAX_CONNECTIONS=${DATABASE_MAX_CONNECTIONS:-24}
BASE=http://127.0.0.1:$LB_PORT
WORK=$(mktemp -d)
SEATS_PER_ROW=1000

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

cluster_up() { # cluster_up HOLD_MS
    "$ROOT/scripts/cluster.sh" down >/dev/null 2>&1 || true
    say "cluster with 3 replicas, HOLD_MS=$1"
    HOLD_MS=$1 "$ROOT/scripts/cluster.sh" up 3 >/dev/null
}

api() { # curl with JSON, and the admin token when the replicas have one (ADMIN_TOKEN passes through)
    local auth=()
    if [ -n "${ADMIN_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $ADMIN_TOKEN"); fi
    curl -fsS -H 'Content-Type: application/json' "${auth[@]}" "$@"
}

new_event() { # new_event NAME ROWS -> id
    api -X POST "$BASE/admin/events" -d "{\"name\":\"$1\",\"rows\":$2,\"seats_per_row\":$SEATS_PER_ROW}" | jq -r .event.id
}

psql_bench() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d booking -qtAX "$@"; }

# (a) pgbench SCRIPT -> "tps p50_ms p99_ms"
pgbench_run() {
    local script=$1 event first last
    event=$(new_event "pgbench $script" 200)
    read -r first last < <(psql_bench -F ' ' -c "SELECT min(id), max(id) FROM seats WHERE event_id = $event")
    rm -f "$WORK"/pgbench_log.*
    (cd "$WORK" && pgbench -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -l \
        -D event="$event" -D first="$first" -D last="$last" -f "$ROOT/scripts/bench/$script.sql" booking >"$WORK/pgbench.out" 2>&1) \
        || { cat "$WORK/pgbench.out" >&2; die "pgbench failed"; }
    local tps
    tps=$(sed -nE 's/^tps = ([0-9.]+) .*without initial.*/\1/p' "$WORK/pgbench.out")
    # Per-transaction latency (µs) is the third column of pgbench's log.
    cat "$WORK"/pgbench_log.* | awk '{print $3}' | sort -n >"$WORK/latencies"
    api -X DELETE "$BASE/admin/events/$event" >/dev/null
    echo "$tps $(percentile 50) $(percentile 99)"
}

percentile() { # percentile P over $WORK/latencies (µs) -> ms
    awk -v p="$1" '{v[NR]=$1} END {i=int(NR*p/100+0.999); if (i<1) i=1; printf "%.2f", v[i]/1000}' "$WORK/latencies"
}

# RSS of every replica, sampled while wrk runs; prints the largest in MiB.
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

# (b)/(c) wrk STRATEGY -> "rps p50_ms p99_ms errors rss_mib wrk_cpu_pct"
wrk_run() {
    local strategy=$1 event
    api -X POST "$BASE/admin/strategy" -d "{\"strategy\":\"$strategy\"}" >/dev/null
    event=$(new_event "wrk $strategy" 200)
    touch "$WORK/sampling"
    sample_rss &
    local sampler=$! start end
    start=$(date +%s.%N)
    # wrk runs as a child of this (sub)shell: once it has exited, its CPU
    # time shows up in the shell's cutime + cstime.
    local me=$BASHPID times_before times_after
    times_before=$(awk '{print $16+$17}' "/proc/$me/stat")
    wrk -t 2 -c "$CLIENTS" -d "${SECONDS_EACH}s" --timeout 10s -s "$ROOT/scripts/bench/book.lua" "$BASE" \
        -- "$event" "$SEATS_PER_ROW" 2 >"$WORK/wrk.out" 2>&1
    times_after=$(awk '{print $16+$17}' "/proc/$me/stat")
    end=$(date +%s.%N)
    rm -f "$WORK/sampling"
    wait "$sampler"
    local line
    line=$(grep WRK_RESULT "$WORK/wrk.out") || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
    api -X DELETE "$BASE/admin/events/$event" >/dev/null
    local hz
    hz=$(getconf CLK_TCK)
    echo "$line" | awk -v rss="$(cat "$WORK/rss")" -v ticks=$((times_after - times_before)) -v hz="$hz" -v s="$start" -v e="$end" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%.0f %.2f %.2f %d %d %.0f\n", v["requests"] / (v["duration_us"] / 1e6), v["p50_us"] / 1000, v["p99_us"] / 1000,
            v["errors_status"] + v["errors_connect"], rss, 100 * ticks / hz / (e - s)
    }'
}

say "benchmark: ${SECONDS_EACH}s per run, $CLIENTS clients, on $(nproc) cores"
cluster_up 0

declare -A A B
for script in pessimistic none conditional; do
    say "(a) pgbench: $script booking SQL"
    A[$script]=$(pgbench_run "$script")
done
for strategy in pessimistic none; do
    say "(b) wrk through nginx: $strategy, hold 0"
    B[$strategy]=$(wrk_run "$strategy")
done
cluster_up 50
say "(c) wrk through nginx: pessimistic, hold 50 ms"
C=$(wrk_run pessimistic)

echo
echo "## Database ceiling (a) vs. the cluster (b), $CLIENTS clients, ${SECONDS_EACH}s each, $(nproc) cores"
echo
echo "| run | req/s | p50 ms | p99 ms | errors | max replica RSS MiB | wrk CPU % |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for script in pessimistic none conditional; do
    read -r tps p50 p99 <<<"${A[$script]}"
    echo "| (a) pgbench $script SQL | $tps | $p50 | $p99 | | | |"
done
for strategy in pessimistic none; do
    read -r rps p50 p99 errors rss cpu <<<"${B[$strategy]}"
    echo "| (b) nginx + 3 replicas, $strategy, hold 0 | $rps | $p50 | $p99 | $errors | $rss | $cpu |"
done
read -r rps p50 p99 errors rss cpu <<<"$C"
echo "| (c) nginx + 3 replicas, pessimistic, hold 50 ms | $rps | $p50 | $p99 | $errors | $rss | $cpu |"
echo

verdict() { # verdict DESCRIPTION OK(0/1)
    if [ "$2" = 1 ]; then echo "- met: $1"; else echo "- MISSED: $1"; fi
}
echo "## Targets"
for strategy in pessimistic none; do
    read -r tps _ <<<"${A[$strategy]}"
    read -r rps _ _ _ <<<"${B[$strategy]}"
    ratio=$(awk -v b="$rps" -v a="$tps" 'BEGIN {printf "%.2f", b / a}')
    echo "- (b)/(a) for $strategy: $ratio"
done
read -r tps _ <<<"${A[pessimistic]}"; read -r rps _ _ _ rss_b _ <<<"${B[pessimistic]}"
ratio=$(awk -v b="$rps" -v a="$tps" 'BEGIN {print b / a}')
verdict "(b)/(a) >= 0.6 for pessimistic ($(printf '%.2f' "$ratio"))" "$(awk -v r="$ratio" 'BEGIN {print (r >= 0.6)}')"
max_rss=$(printf '%s\n' "${B[pessimistic]}" "${B[none]}" "$C" | awk '{if ($5 > m) m = $5} END {print m}')
verdict "every replica's RSS <= 30 MiB under load (max $max_rss MiB)" "$(awk -v m="$max_rss" 'BEGIN {print (m <= 30)}')"
bound=$(awk -v c="$CLIENTS" 'BEGIN {print c / 0.050}')
read -r rps _ <<<"$C"
verdict "hold 50 ms, $CLIENTS in flight: >= 90 % of the hold-bound $bound req/s ($rps req/s, $(awk -v r="$rps" -v b="$bound" 'BEGIN {printf "%.0f", 100 * r / b}') %)" \
    "$(awk -v r="$rps" -v b="$bound" 'BEGIN {print (r >= 0.9 * b)}')"
echo
echo "Everything shares $(nproc) cores: pgbench or wrk, nginx, three replicas, Postgres and Redis."
