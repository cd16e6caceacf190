#!/usr/bin/env bash
# The chart, alert, /metrics and Dockerfile checks in one command: set up .venv-helm, then run
# pytest (the /metrics checks run target/debug's binaries: build them first, as make test does).
#   tests/deploy/run.sh            # everything
#   tests/deploy/run.sh -k rbac    # extra arguments go to pytest
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
"$repo/tests/deploy/setup.sh"
cd "$repo"
# tests/deploy/images needs a Docker engine and release binaries: `make test-images` runs it.
exec "$repo/.venv-helm/bin/python" -m pytest -q -p no:cacheprovider tests/deploy --ignore=tests/deploy/images "$@"
