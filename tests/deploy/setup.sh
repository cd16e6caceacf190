#!/usr/bin/env bash
# Creates (or reuses) the chart tests' virtualenv at <repo>/.venv-helm with the pinned tools of
# requirements.txt: the Helm v4 SDK (helm-python-sdk), kubernetes-validate, pytest, PyYAML, and
# promtool.
# Idempotent: does nothing when the venv already matches requirements.txt.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$repo/.venv-helm"
req="$repo/tests/deploy/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

# promtool (the alert tests' checker) from the distribution's `prometheus` package. Only the
# binary is unpacked into the venv: installing the package would also start a Prometheus server.
ensure_promtool() {
    command -v promtool >/dev/null && return 0
    [[ -x "$venv/bin/promtool" ]] && return 0
    local sudo="" tmp
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    tmp="$(mktemp -d)"
    echo "setup: unpacking promtool from the distribution's prometheus package" >&2
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
        $sudo apt-get update -qq
        (cd "$tmp" && apt-get download prometheus >/dev/null)
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
    mkdir -p "$venv/bin"
    install -m 0755 "$tmp/root/usr/bin/promtool" "$venv/bin/promtool"
    rm -rf "$tmp"
}

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    ensure_promtool
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup: creating $venv" >&2
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
ensure_promtool
echo "setup: $venv ready" >&2
