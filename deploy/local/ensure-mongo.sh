#!/usr/bin/env bash
# Makes sure the MongoDB-compatible test server (SecantusDB) is installed in
# `.venv-mongo` at the repository root. The tests start and stop the server themselves
# (`.venv-mongo/bin/secantusd-py` on a free port, in memory). Idempotent: does nothing when the
# pinned version is already installed. Prints one line of what it did.
set -euo pipefail
cd "$(dirname "$0")/../.."

version="0.7.0b3" # a beta: pin it, `pip install secantusdb` would drift
venv=".venv-mongo"

installed() {
  [ -x "$venv/bin/secantusd-py" ] &&
    "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('secantusdb') != '$version')" 2>/dev/null
}

if installed; then
  echo "mongo: secantusdb $version already in $venv"
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "secantusdb==$version"
installed || { echo "mongo: secantusdb $version did not install into $venv" >&2; exit 1; }
echo "mongo: installed secantusdb $version into $venv"
