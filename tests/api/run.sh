#!/usr/bin/env bash
# The slow API suites (`make test-api`, also run by .ci/run): dm-api serving the results of a
# real audit and analytics cycle (the `seeded` example: MariaDB + SecantusDB), then
#   1. schemathesis against the live server and its own /openapi.json: 0 server errors,
#      0 schema violations (status codes, content types, headers, bodies);
#   2. the status page in headless chromium (selenium + chromium-driver), screenshots in target/api/.
# Stops only the server it started, by PID.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
tests/api/setup.sh
deploy/local/ensure-mariadb.sh >/dev/null
deploy/local/ensure-mongo.sh >/dev/null

out="$repo/target/api"
mkdir -p "$out"
cargo build -q -p api --example seeded
log="$out/seeded.log"
target/debug/examples/seeded 0 >"$out/seeded.out" 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    url="$(sed -n 's/^READY //p' "$out/seeded.out")"
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "seeded server died:"; cat "$log"; exit 1; }
    sleep 0.1
done
[[ -n "$url" ]] || { echo "seeded server did not start"; cat "$log"; exit 1; }
echo "--- dm-api at $url"

echo "--- schemathesis"
# Hypothesis' example database and schemathesis' cache stay out of the repository (in target/api).
export HYPOTHESIS_STORAGE_DIRECTORY="$out/hypothesis"
(cd "$out" && "$repo/.venv-api/bin/schemathesis" run "$url/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection \
    --phases examples,coverage,fuzzing \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-150}" \
    --workers 2 \
    --request-timeout 10 \
    --seed 12 \
    --report junit --report-dir "$out" \
    --no-color)

echo "--- browser"
API_URL="$url" SCREENSHOT_DIR="$out" .venv-api/bin/python -m pytest -q tests/api/test_page.py
echo "screenshots: $out/status-page.png $out/status-page-phone.png"
