#!/usr/bin/env bash
# The README's quick start on a fresh Debian 12, as a new user runs it: in a
# new container of Debian 12 with only Rust added (the local builder image of
# scripts/docker-bases.sh: debootstrap's Debian, gcc, Rust 1.95), a copy of
# the files git tracks, then the README's commands, as root. Prints what each
# printed, how long it took, and whether it worked.
#
#   scripts/fresh-machine.sh up      scripts/cluster.sh up, then scripts/exercises.sh
#   scripts/fresh-machine.sh test    DOCKER_TESTS=no scripts/test.sh: the whole suite
#                                    but the Docker tests (a container cannot run a
#                                    Docker engine here: privileged containers are
#                                    refused; the Docker tests run on the machine)
#   scripts/fresh-machine.sh         both, each in a container of its own
#
# Needs a Docker engine; nothing runs on this machine but the container.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

mode=${1:-both}
case "$mode" in up | test | both) ;; *) die "usage: scripts/fresh-machine.sh [up|test|both]" ;; esac

"$ROOT/scripts/docker-bases.sh"
context=$(mktemp -d)
cleanup() { rm -rf "$context"; docker rm -f "fresh-machine-$$-up" "fresh-machine-$$-test" >/dev/null 2>&1 || true; }
trap cleanup EXIT
(cd "$ROOT" && git ls-files -z | while IFS= read -r -d '' file; do
    [ -f "$file" ] && mkdir -p "$context/$(dirname "$file")" && cp -p "$file" "$context/$file"
done)

run_in_fresh_debian() { # run_in_fresh_debian NAME COMMAND [docker run options]
    local name=$1 command=$2; shift 2
    say "a fresh Debian 12 with Rust: $command"
    local started=$SECONDS status=0
    docker run --name "fresh-machine-$$-$name" "$@" -v "$context:/src:ro" booking-lab-local/rust:1.95 \
        bash -c "cp -a /src /lab && cd /lab && $command" || status=$?
    local took=$((SECONDS - started))
    if [ "$status" = 0 ]; then
        say "worked: '$command' in ${took}s"
    else
        say "FAILED (exit $status): '$command' after ${took}s"
    fi
    return "$status"
}

status=0
if [ "$mode" != test ]; then
    run_in_fresh_debian up 'scripts/cluster.sh up && scripts/exercises.sh --concurrency 10' || status=1
fi
if [ "$mode" != up ]; then
    run_in_fresh_debian test 'DOCKER_TESTS=no scripts/test.sh' || status=1
fi
exit "$status"
