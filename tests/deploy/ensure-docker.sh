#!/usr/bin/env bash
# Makes sure a Docker engine answers on the default socket, for `make test-images`. Installs the
# distribution's docker.io when absent and starts dockerd when nothing answers (its own pid file
# and log). Idempotent. Prints one line of what it did. No registry is needed: the images are
# built on a locally made base (tests/deploy/images).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
docker=/usr/bin/docker # the distribution's client: it drives the engine's built-in BuildKit
pidfile=/run/dm-test-dockerd.pid
log=/var/log/dm-test-dockerd.log

if [ -x "$docker" ] && $sudo "$docker" info >/dev/null 2>&1; then
  echo "docker: engine already answering"
  exit 0
fi
if ! command -v dockerd >/dev/null || [ ! -x "$docker" ]; then
  echo "docker: installing docker.io from the distribution's packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if $sudo "$docker" info >/dev/null 2>&1; then
  echo "docker: engine started by the package"
  exit 0
fi
$sudo start-stop-daemon --start --oknodo --background --pidfile "$pidfile" --make-pidfile \
  --startas /bin/sh -- -c "exec dockerd >>'$log' 2>&1"
for _ in $(seq 1 300); do
  if $sudo "$docker" info >/dev/null 2>&1; then
    echo "docker: started dockerd (pid $(cat "$pidfile"), log $log)"
    exit 0
  fi
  sleep 0.1
done
echo "docker: dockerd did not answer within 30 s; the engine's own words:" >&2
tail -n 20 "$log" >&2
exit 1
