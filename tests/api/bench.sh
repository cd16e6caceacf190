#!/usr/bin/env bash
# `make bench-api`: dm-api's GET /v1/datasets with 1,000 datasets against the same server
# answering the same bytes precomputed (GET /static), under wrk, in one run. Release build.
#   tests/api/bench.sh [DURATION_S] [CONNECTIONS]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
tests/api/setup.sh
deploy/local/ensure-mongo.sh >/dev/null
duration="${1:-10}"
connections="${2:-32}"
out="$repo/target/api"
mkdir -p "$out"
# Release optimisations without LTO, so the build stays short; both sides of the ratio run in
# the same binary. BENCH_PROFILE=debug measures the debug build instead (no release build).
if [[ "${BENCH_PROFILE:-release}" == debug ]]; then
    cargo build -q -p api --example bench_server
    bin=target/debug/examples/bench_server
else
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo build -q --release -p api --example bench_server
    bin=target/release/examples/bench_server
fi
"$bin" 1000 >"$out/bench.out" 2>"$out/bench.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    ready="$(sed -n 's/^READY //p' "$out/bench.out")"
    [[ -n "$ready" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$out/bench.log"; exit 1; }
    sleep 0.1
done
url="${ready% *}"
bytes="${ready#* }"
run() { wrk -t2 -c"$connections" -d"${duration}s" --latency "$url$1" | tee "$out/wrk$(echo "$1" | tr / _).txt"; }
rps() { sed -n 's/^Requests\/sec: *//p' "$1"; }
p99() { awk '$1 == "99%" { print $2 }' "$1"; }
echo "--- warm-up"; wrk -t1 -c4 -d2s "$url/v1/datasets" >/dev/null
echo "--- GET /v1/datasets ($bytes bytes)"; run /v1/datasets
echo "--- GET /static (the same $bytes bytes)"; run /static
a="$out/wrk_v1_datasets.txt"; b="$out/wrk_static.txt"
printf '\n| | req/s | p99 |\n|---|---|---|\n| GET /v1/datasets (1,000 datasets, %s B) | %s | %s |\n| GET /static (same bytes) | %s | %s |\n' \
    "$bytes" "$(rps "$a")" "$(p99 "$a")" "$(rps "$b")" "$(p99 "$b")"
python3 -c "print(f'ratio /v1/datasets : static = {float(\"$(rps "$a")\") / float(\"$(rps "$b")\"):.3f}')"
