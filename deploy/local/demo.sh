#!/usr/bin/env bash
# The main job on one machine (issue 7): builds the binaries, makes sure NATS, MariaDB and the
# Mongo-compatible server are installed, and runs dm-demo, which starts what is not running,
# seeds a demo database, runs dm-consumer (fed by dm-loadgen), dm-auditor and dm-analytics,
# prints a summary and stops only what it started.
#   deploy/local/demo.sh                 run once (a minute or so after the first build) and stop
#   deploy/local/demo.sh --keep          keep everything running until Ctrl-C
#   deploy/local/demo.sh --json          the summary as one JSON object
#   deploy/local/demo.sh --help          every option (rate, symbols, intervals, ports, …)
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '==> %s\n' "$*" >&2; }

step "installing what is missing (nothing is started here)"
deploy/local/ensure-nats.sh --install-only >&2
deploy/local/ensure-mariadb.sh --install-only >&2
deploy/local/ensure-mongo.sh >&2

step "building dm-demo, dm-consumer, dm-loadgen, dm-auditor, dm-analytics and dm-api"
cargo build -q -p demo -p consumer -p loadgen -p auditor -p analytics -p api --bins

exec target/debug/dm-demo run "$@"
