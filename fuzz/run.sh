#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) from a seed corpus built from the envelope
# fixtures and the URL forms, and prints one line per target: executions, corpus size, crashes.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); the stable toolchain is enough with
# RUSTC_BOOTSTRAP=1 and no sanitizer. A crash leaves its input in fuzz/artifacts/ and fails.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH="${1:-60}"
export RUSTC_BOOTSTRAP=1
TARGETS=(parse redact)

# Seed corpora: one file per fixture line (empty lines included), and a few URLs.
mkdir -p corpus/parse corpus/redact
awk '{ f = sprintf("corpus/parse/fixture-%03d", NR); printf "%s", $0 > f; close(f) }' \
  ../crates/events/tests/fixtures/envelopes.ndjson
printf '\x00nats://u:p@ss/w?rd#x@host:4222' >corpus/redact/seed-user
printf '\x01nats://T0K3N@host:4222,nats://T0K3N@b' >corpus/redact/seed-token
printf '\x04mysql+pymysql://petrosa:p%%40ss@db:3306/petrosa_crypto' >corpus/redact/seed-mysql

cargo fuzz build --sanitizer none --release 2>&1 | tail -n 3
status=0
for t in "${TARGETS[@]}"; do
  log="$(mktemp)"
  if cargo fuzz run --sanitizer none --release "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=4096 >"$log" 2>&1; then
    result="0 crashes"
  else
    result="CRASH (see fuzz/artifacts/$t)"; status=1
    tail -n 40 "$log"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  echo "fuzz $t: ${SECONDS_EACH}s, ${execs:-?} executions, corpus $(ls "corpus/$t" | wc -l) inputs, $result"
  rm -f "$log"
done
exit "$status"
