#!/usr/bin/env bash
# The whole test suite: unit and API tests against real Postgres and Redis,
# then the cluster tests through real nginx.
#
#   scripts/test.sh
set -euo pipefail
# k6 and Schemathesis, as scripts/prereqs.sh installs them.
PATH=$(cd "$(dirname "$0")/.." && pwd)/.tools/venv/bin:$PATH
cd "$(dirname "$0")/.."

scripts/prereqs.sh
echo "==> cargo nextest run (unit and API tests against real Postgres and Redis)"
cargo nextest run --no-fail-fast
