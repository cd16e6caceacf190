#!/usr/bin/env bash
# The chart and Dockerfile checks in one command: set up .venv-helm, then run pytest.
#   tests/deploy/run.sh            # everything
#   tests/deploy/run.sh -k rbac    # extra arguments go to pytest
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
"$repo/tests/deploy/setup.sh"
cd "$repo"
exec "$repo/.venv-helm/bin/python" -m pytest -q -p no:cacheprovider tests/deploy "$@"
