#!/usr/bin/env bash
# Creates (or reuses) the chart tests' virtualenv at <repo>/.venv-helm with the pinned tools of
# requirements.txt: the Helm v4 SDK (helm-python-sdk), kubernetes-validate, pytest, PyYAML.
# Idempotent: does nothing when the venv already matches requirements.txt.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$repo/.venv-helm"
req="$repo/tests/deploy/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup: creating $venv" >&2
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "setup: $venv ready" >&2
