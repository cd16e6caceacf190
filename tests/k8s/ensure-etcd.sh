#!/usr/bin/env bash
# Makes sure an etcd server binary is installed (Debian's `etcd-server`), for the real
# kube-apiserver of `make test-k8s`. Installs nothing when one is there. Idempotent.
# Starts nothing: tests/k8s/cluster.sh runs its own etcd on a free port with its own data dir.
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

find_etcd() { command -v etcd 2>/dev/null || { [ -x /usr/bin/etcd ] && echo /usr/bin/etcd; } || true; }

bin="$(find_etcd)"
if [ -z "$bin" ]; then
  echo "etcd: installing etcd-server from the distribution's packages" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
  bin="$(find_etcd)"
  [ -n "$bin" ] || { echo "etcd: FAILED: etcd-server installed but no etcd binary found" >&2; exit 1; }
fi
echo "etcd: $bin ($("$bin" --version 2>/dev/null | head -n1))" >&2
echo "$bin"
