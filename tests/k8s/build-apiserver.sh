#!/usr/bin/env bash
# Builds kube-apiserver once from Debian's own `kubernetes` source package and caches the binary
# under ~/.cache, keyed by version; later runs only check the cached binary and print its path.
#
# Kubernetes 1.20 must be built with Go 1.15: its vendored reflect2 breaks at run time on Go >= 1.18.
# Go 1.15 comes from Debian bullseye's .debs, fetched through a private apt directory and unpacked
# with `dpkg -x`, so the system's apt sources and packages are left untouched.
#
# Prints each step. Exits non-zero with the reason on any failure. The last line of stdout is the
# binary's path, so callers can do `bin=$(tests/k8s/build-apiserver.sh | tail -n1)`.
set -euo pipefail

version="${K8S_VERSION:-1.20.2}"
# Bump when the way the binary is built changes, so cached binaries of an older recipe rebuild.
recipe=2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dm-kube-apiserver/v$version"
bin="$cache/kube-apiserver"
stamp="$cache/recipe"
say() { echo "build-apiserver: $*" >&2; }
die() { echo "build-apiserver: FAILED: $*" >&2; exit 1; }

reports_version() { "$1" --version 2>/dev/null | grep -qx "Kubernetes v$version"; }

if [ -x "$bin" ] && reports_version "$bin" && [ "$(cat "$stamp" 2>/dev/null)" = "$recipe" ]; then
  say "cached: $bin ($("$bin" --version))"
  echo "$bin"
  exit 0
fi

for tool in apt-get dpkg tar; do
  command -v "$tool" >/dev/null || die "'$tool' is needed (a Debian-based system)"
done
# Kubernetes' own Makefile generates the OpenAPI definitions.
if ! command -v make >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing make from the distribution's packages"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq make >/dev/null \
    || die "could not install make"
fi

work="$cache/build"
rm -rf "$work"
mkdir -p "$work"
start=$(date +%s)

# --- A private apt directory: bookworm's sources and bullseye's binaries, nothing of the system's.
apt_dir="$work/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/etc/preferences.d"
cat >"$apt_dir/sources.list" <<SOURCES
deb-src http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bullseye main
SOURCES
apt_private=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Etc::preferencesparts=$apt_dir/etc/preferences.d" -o "APT::Get::List-Cleanup=0"
  -o "APT::Sandbox::User=$(id -un)")
say "apt-get update (private lists: bookworm deb-src, bullseye deb) in $apt_dir"
apt-get "${apt_private[@]}" update -qq || die "apt-get update of the private lists"

# --- The source: the .orig tarball holds the whole tree, vendor/ included.
src_dir="$work/src"
mkdir -p "$src_dir"
say "apt-get source --download-only kubernetes (bookworm)"
(cd "$src_dir" && apt-get "${apt_private[@]}" source --download-only -qq kubernetes) \
  || die "could not download the kubernetes source package"
orig=$(ls "$src_dir"/kubernetes_*.orig.tar.* 2>/dev/null | head -n1)
[ -n "$orig" ] || die "no kubernetes_*.orig.tar.* in $src_dir"
case "$orig" in *"$version"*) ;; *) die "source package $orig is not version $version" ;; esac
say "unpacking $(basename "$orig")"
tar -xf "$orig" -C "$src_dir"
tree=$(dirname "$(ls -d "$src_dir"/*/cmd/kube-apiserver | head -n1)")
tree=$(dirname "$tree")
[ -d "$tree/vendor" ] || die "the source tree $tree has no vendor/"

# --- Go 1.15 from bullseye, unpacked privately.
go_dir="$work/go"
mkdir -p "$go_dir"
say "apt-get download golang-1.15-go golang-1.15-src (bullseye)"
(cd "$work" && apt-get "${apt_private[@]}" download -qq golang-1.15-go golang-1.15-src) \
  || die "could not download Go 1.15"
for deb in "$work"/golang-1.15-*.deb; do dpkg -x "$deb" "$go_dir"; done
export GOROOT="$go_dir/usr/lib/go-1.15"
export PATH="$GOROOT/bin:$PATH"
export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOFLAGS=-mod=vendor GO111MODULE=on
export GOPROXY=off GOTOOLCHAIN=local
go version | grep -q 'go1\.15' || die "Go 1.15 not usable from $GOROOT ($(go version 2>&1))"
say "$(go version)"

# --- Generated OpenAPI definitions (not shipped in the tarball), then the binary.
cd "$tree"
say "make generated_files in $tree"
make generated_files >"$work/generated_files.log" 2>&1 \
  || { tail -n 30 "$work/generated_files.log" >&2; die "make generated_files (log: $work/generated_files.log)"; }
# The version is stamped into every package that carries one, as hack/lib/version.sh does: the
# `--version` flag and the server's /version endpoint read different ones.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=v$version -X $pkg.gitMajor=${version%%.*}"
  ldflags="$ldflags -X $pkg.gitMinor=$(echo "$version" | cut -d. -f2) -X $pkg.gitTreeState=archive"
  ldflags="$ldflags -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
say "go build ./cmd/kube-apiserver"
CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$work/kube-apiserver" ./cmd/kube-apiserver \
  || die "go build ./cmd/kube-apiserver"
reports_version "$work/kube-apiserver" || die "built binary reports '$("$work/kube-apiserver" --version)'"

mv "$work/kube-apiserver" "$bin"
echo "$recipe" >"$stamp"
cd "$cache"
rm -rf "$work"
say "built $bin ($("$bin" --version)) in $(( $(date +%s) - start )) s"
echo "$bin"
