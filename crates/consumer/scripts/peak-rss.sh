#!/usr/bin/env bash
# Peak RSS of dm-consumer (release build) while it counts N messages through NATS, once with the
# realistic mix (baseline) and once with N distinct symbols (the hostile input), then of a
# replay of N distinct symbols. Prints one line per run; RELIABILITY.md records the figures.
#
#   crates/consumer/scripts/peak-rss.sh [N]        (default 1000000; needs nats-server on :4222)
set -euo pipefail
cd "$(dirname "$0")/../../.."
N="${1:-1000000}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
cargo build --release -q -p consumer -p loadgen --bins
BIN=target/release

metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

run() { # label, loadgen flags...
  local label="$1"; shift
  local subject="rss.$$.$label.binance.futures.websocket.data" port=$((20000 + RANDOM % 20000))
  local log; log=$(mktemp)
  NATS_URL="$NATS_URL" NATS_CONSUMER_SUBJECT="$subject" METRICS_PORT="$port" METRICS_HOST=127.0.0.1 \
    STATS_INTERVAL=60s LOG_FORMAT=text "$BIN/dm-consumer" 2>"$log" &
  local pid=$!
  until curl -sf "http://127.0.0.1:$port/health/readiness" >/dev/null; do sleep 0.1; done
  local t0=$SECONDS
  "$BIN/dm-loadgen" --nats-url "$NATS_URL" --subject "$subject" --rate 0 --count "$N" "$@" >/dev/null
  # Wait until every message is received or dropped, or nothing has moved for 10 s.
  local got=0 dropped=0 last=-1 still=0
  while (( SECONDS - t0 < 300 && still < 20 )); do
    got=$(metric "$port" data_manager_messages_received_total); got=${got%.*}
    dropped=$(metric "$port" data_manager_nats_dropped_messages_total); dropped=${dropped%.*}
    (( ${got:-0} + ${dropped:-0} >= N )) && break
    if (( ${got:-0} + ${dropped:-0} == last )); then still=$((still + 1)); else still=0; fi
    last=$(( ${got:-0} + ${dropped:-0} ))
    sleep 0.5
  done
  local hwm reconnects
  reconnects=$(metric "$port" data_manager_nats_reconnections_total)
  hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  printf '%-10s published=%s received=%s dropped=%s reconnects=%s peak_rss_kib=%s (%.1f MiB)\n' \
    "$label" "$N" "${got:-0}" "${dropped:-0}" "${reconnects:-0}" "$hwm" "$(echo "$hwm / 1024" | bc -l)"
  rm -f "$log"
}

run mix
run distinct --distinct-symbols

capture=$(mktemp)
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "{\"e\":\"trade\",\"E\":1761055392345,\"s\":\"D%d\",\"p\":\"1\",\"q\":\"1\"}\n", i }' >"$capture"
/usr/bin/time -f '%M' -o "$capture.rss" "$BIN/dm-consumer" --replay "$capture" >/dev/null
printf '%-10s lines=%s peak_rss_kib=%s\n' replay "$N" "$(cat "$capture.rss")"
rm -f "$capture" "$capture.rss"
