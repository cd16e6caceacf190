#!/usr/bin/env bash
# The main job on one machine: dm-consumer on local NATS, fed by dm-loadgen at a realistic
# rate, with its stats lines, health and a few metrics shown; then a clean shutdown.
#   deploy/local/demo.sh            run for ~30 s and stop
#   deploy/local/demo.sh --keep     keep running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/../.."

keep=no
[ "${1:-}" = "--keep" ] && keep=yes
rate="${DEMO_RATE:-200}"
seconds="${DEMO_SECONDS:-30}"
port="${METRICS_PORT:-9090}"
subject="demo.$$.binance.futures.websocket.data"

step() { printf '\n==> %s\n' "$*"; }

step "building dm-consumer and dm-loadgen"
cargo build -q -p consumer -p loadgen --bins
deploy/local/ensure-nats.sh

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

step "starting dm-consumer (metrics and health on http://127.0.0.1:$port)"
NATS_CONSUMER_SUBJECT="$subject" METRICS_PORT="$port" LOG_FORMAT=text STATS_INTERVAL=10s \
  target/debug/dm-consumer &
consumer=$!
pids+=("$consumer")
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health/readiness" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sS "http://127.0.0.1:$port/health/readiness"; echo

if [ "$keep" = yes ]; then
  step "publishing $rate msg/s until Ctrl-C (try: curl -s 127.0.0.1:$port/metrics | grep data_manager_)"
  NATS_CONSUMER_SUBJECT="$subject" target/debug/dm-loadgen --rate "$rate" >/dev/null &
  pids+=("$!")
  wait "$consumer"
  exit 0
fi

step "publishing $rate msg/s for $seconds s (one stats line every 10 s)"
NATS_CONSUMER_SUBJECT="$subject" target/debug/dm-loadgen --rate "$rate" --duration "$seconds" > /tmp/dm-loadgen.$$.json
sleep 1.5

step "what the load generator sent"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("published", d["published"], "by kind", d["by_kind"])' /tmp/dm-loadgen.$$.json
rm -f /tmp/dm-loadgen.$$.json

step "what dm-consumer counted (http://127.0.0.1:$port/metrics)"
curl -sS "http://127.0.0.1:$port/metrics" | grep -E '^data_manager_(messages_received_total|messages_processed_total|messages_rejected_total|nats_connection_status)' || true

step "stopping dm-consumer (SIGTERM: drain, final stats line, exit 0)"
kill -TERM "$consumer"
wait "$consumer"
pids=()
echo "dm-consumer exited with $?"
