#!/usr/bin/env bash
# The README's exercise for every strategy, against a running cluster:
# ten concurrent bookings of seat A1 per strategy, counted per replica.
#
#   scripts/exercises.sh [BASE_URL] [--concurrency N] [--strategies none,mutex] [--json]
#
# BASE_URL defaults to http://127.0.0.1:8000 (the load balancer).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

base_url=${BASE_URL:-http://127.0.0.1:8000}
if [ $# -gt 0 ] && [[ "$1" != --* ]]; then base_url=$1; shift; fi

bin=${BOOKING_BIN:-$ROOT/target/release/booking-service}
if [ -z "${BOOKING_BIN:-}" ]; then
    command -v cargo >/dev/null || { echo "error: cargo is missing; install Rust or set BOOKING_BIN" >&2; exit 1; }
    (cd "$ROOT" && cargo build --release --quiet)
fi
echo "==> exercising every strategy against $base_url" >&2
exec "$bin" exercises --base-url "$base_url" "$@"
