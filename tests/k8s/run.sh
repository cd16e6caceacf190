#!/usr/bin/env bash
# `make test-k8s`: the Lease election suite against a real kube-apiserver.
#
#   tests/k8s/run.sh          build/reuse kube-apiserver, start a throwaway control plane, run
#                             the real-server tests (the `real` twins of the leader's election
#                             tests, the chart-Role test, two dm-auditor processes), stop it
#   tests/k8s/run.sh bench    the failover benchmark, in one run against the in-process fake
#                             and then against the same control plane (BENCHMARKS.md)
#
# Idempotent: the kube-apiserver binary is built once per machine and cached under ~/.cache;
# etcd comes from the distribution's etcd-server package. The control plane (own data
# directory, free ports, TLS, token authentication, RBAC) is stopped by PID on exit.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
CARGO="${CARGO:-cargo}"
mode="${1:-test}"

apiserver=$(tests/k8s/build-apiserver.sh | tail -n1)
etcd=$(tests/k8s/ensure-etcd.sh | tail -n1)
tests/deploy/setup.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/dm-k8s.XXXXXX")
trap 'tests/k8s/cluster.sh stop "$dir"; rm -rf "$dir"' EXIT
.venv-helm/bin/python tests/k8s/render_chart_rbac.py "$dir/chart-rbac.json"
tests/k8s/cluster.sh start "$dir" "$apiserver" "$etcd"
# shellcheck disable=SC1091
source "$dir/env"
export DM_K8S_CHART_RBAC="$dir/chart-rbac.json"
# kube's kubeconfig loader honours proxies; the server is on loopback.
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy
echo "test-k8s: against kube-apiserver $DM_K8S_VERSION (as the server reports it at /version)"

if [ "$mode" = bench ]; then
  # The dev profile: the figures are set by protocol timers, not CPU (crates/leader/BENCHMARKS.md).
  "$CARGO" build -p leader --example failover --features testing
  "$CARGO" run -q -p leader --example failover --features testing -- "${@:2}"
  "$CARGO" run -q -p leader --example failover --features testing -- --real "${@:2}"
  exit 0
fi

# The real-server tests are #[ignore]d in `make test`; here only they run.
"$CARGO" build -p auditor --bins
if command -v cargo-nextest >/dev/null 2>&1; then
  "$CARGO" nextest run -p leader -p auditor --no-fail-fast --run-ignored only \
    -E 'test(/::real$/) | test(/^real_/) | binary(k8s_election)'
else
  "$CARGO" test -p leader --no-fail-fast -- --ignored
  "$CARGO" test -p auditor --test k8s_election --no-fail-fast -- --ignored
fi
echo "test-k8s: passed against kube-apiserver $DM_K8S_VERSION"
