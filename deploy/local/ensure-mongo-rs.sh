#!/usr/bin/env bash
# Makes sure `secantusd-rs`, the Rust build of the same MongoDB-compatible test server, is
# installed in `.tools/secantus-rs/bin`. Only `make bench-scale-rs` uses it: it is several times
# faster than `secantusd-py`, so a benchmark against it measures less of the test server's own
# time. A cold source build takes about 20 minutes on 2 cores and needs `cmake`. It runs as a
# separate process and is never linked into our binaries (it is GPL-2.0). Idempotent; prints one
# line of what it did.
set -euo pipefail
cd "$(dirname "$0")/../.."

version="0.5.3-beta.196" # a beta: pin it
root=".tools/secantus-rs"
bin="$root/bin/secantusd-rs"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF "$version"; then
  echo "mongo-rs: secantusd-rs $version already in $root"
  exit 0
fi
command -v cmake >/dev/null || apt-get install -y -q cmake >/dev/null
# The crate declares a newer rust-version than it needs.
cargo install secantus-mdb --version "$version" --locked --ignore-rust-version --root "$root" --quiet
echo "mongo-rs: installed secantusd-rs $version into $root"
