#!/usr/bin/env bash
# Makes sure a NATS server (with JetStream) listens on 127.0.0.1:${NATS_PORT:-4222}.
# Installs it from the distribution's packages when absent and starts it when not running.
# Idempotent: does nothing when the port already answers. Prints one line of what it did.
#   --install-only   install the package if absent, start nothing (dm-demo starts and stops it)
set -euo pipefail

install_only=no
[ "${1:-}" = "--install-only" ] && install_only=yes

port="${NATS_PORT:-4222}"
store="${NATS_STORE_DIR:-/var/lib/nats-server}"
log="${NATS_LOG_FILE:-/var/log/nats-server.log}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

if [ "$install_only" = no ] && listening; then
  echo "nats: already listening on 127.0.0.1:$port"
  exit 0
fi

bin="$(command -v nats-server || true)"
[ -n "$bin" ] || { [ -x /usr/sbin/nats-server ] && bin=/usr/sbin/nats-server; } || true
if [ -z "$bin" ]; then
  echo "nats: installing nats-server from the distribution's packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
  bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
fi

if [ "$install_only" = yes ]; then
  echo "nats: $bin installed"
  exit 0
fi

$sudo mkdir -p "$store"
$sudo start-stop-daemon --start --oknodo --background --exec "$bin" -- \
  -a 127.0.0.1 -p "$port" -js -sd "$store" -l "$log"

for _ in $(seq 1 100); do
  if listening; then
    echo "nats: started $bin on 127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "nats: $bin did not start listening on 127.0.0.1:$port (see $log)" >&2
exit 1
