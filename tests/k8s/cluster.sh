#!/usr/bin/env bash
# A throwaway Kubernetes control plane for tests: etcd and kube-apiserver on free loopback
# ports, with their own data directory, TLS (a CA and a serving certificate made by openssl),
# static-token authentication and the RBAC authorizer. Stops them by PID.
#
#   tests/k8s/cluster.sh start DIR [KUBE_APISERVER] [ETCD]   start; DIR/env holds what tests need
#   tests/k8s/cluster.sh stop DIR                            stop what `start DIR` started
#
# DIR/env (sourced by tests/k8s/run.sh) exports:
#   DM_K8S_KUBECONFIG   kubeconfig of the cluster admin (group system:masters), namespace default
#   DM_K8S_NOROLE_TOKEN a valid token of user "dm-norole", which no Role or ClusterRole names
#   DM_K8S_VERSION      the server's gitVersion, as /version reports it
set -euo pipefail

say() { echo "cluster: $*" >&2; }
die() { echo "cluster: FAILED: $*" >&2; exit 1; }

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  die "no free port found"
}

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  local dir=$1
  for name in kube-apiserver etcd; do
    [ -f "$dir/$name.pid" ] || continue
    pid=$(cat "$dir/$name.pid")
    say "stopping $name (pid $pid)"
    stop_pid "$pid"
    rm -f "$dir/$name.pid"
  done
  # etcd's data lives in memory (/dev/shm) when that exists; it is only for this run.
  [ -f "$dir/etcd-data" ] && rm -rf "$(cat "$dir/etcd-data")" "$dir/etcd-data"
  return 0
}

certs() {
  local dir=$1
  say "generating a CA, a serving certificate for 127.0.0.1 and service-account keys (openssl)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dm-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "basicConstraints=CA:FALSE" >"$dir/server.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  [ -s "$dir/server.crt" ] && [ -s "$dir/sa.pub" ] || die "openssl did not produce the certificates"
}

start() {
  local dir=$1 apiserver=$2 etcd=$3
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -x "$apiserver" ] || die "no kube-apiserver at '$apiserver' (tests/k8s/build-apiserver.sh)"
  [ -x "$etcd" ] || die "no etcd at '$etcd' (tests/k8s/ensure-etcd.sh)"
  certs "$dir"
  local admin_token norole_token
  admin_token=$(openssl rand -hex 24)
  norole_token=$(openssl rand -hex 24)
  printf '%s\n' "$admin_token,dm-admin,dm-admin,\"system:masters\"" \
    "$norole_token,dm-norole,dm-norole" >"$dir/tokens.csv"

  local data="$dir/etcd"
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then data=$(mktemp -d /dev/shm/dm-etcd.XXXXXX); fi
  echo "$data" >"$dir/etcd-data"
  local etcd_port peer_port port
  etcd_port=$(free_port); peer_port=$(free_port); port=$(free_port)
  say "starting etcd on 127.0.0.1:$etcd_port (data $data)"
  "$etcd" --name dm-test --data-dir "$data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "dm-test=http://127.0.0.1:$peer_port" --log-level warn \
    >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || { tail -n 20 "$dir/etcd.log" >&2; die "etcd exited"; }
    sleep 0.1
  done
  curl -fs "http://127.0.0.1:$etcd_port/health" >/dev/null || die "etcd not healthy (log: $dir/etcd.log)"

  say "starting kube-apiserver on https://127.0.0.1:$port (TLS, token auth, RBAC)"
  "$apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --secure-port="$port" --insecure-port=0 --advertise-address=127.0.0.1 \
    --tls-cert-file="$dir/server.crt" --tls-private-key-file="$dir/server.key" --cert-dir="$dir/certs" \
    --token-auth-file="$dir/tokens.csv" --anonymous-auth=false --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$dir/sa.pub" --service-account-signing-key-file="$dir/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --profiling=false \
    >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  local url="https://127.0.0.1:$port"
  local curl_admin=(curl -fsS --cacert "$dir/ca.crt" -H "Authorization: Bearer $admin_token")
  for _ in $(seq 1 600); do
    "${curl_admin[@]}" "$url/readyz" >/dev/null 2>&1 && break
    kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null \
      || { tail -n 30 "$dir/kube-apiserver.log" >&2; die "kube-apiserver exited"; }
    sleep 0.1
  done
  "${curl_admin[@]}" "$url/readyz" >/dev/null || die "kube-apiserver not ready after 60 s (log: $dir/kube-apiserver.log)"
  # The bootstrap controller creates the namespace `default` just after readiness.
  for _ in $(seq 1 100); do
    "${curl_admin[@]}" "$url/api/v1/namespaces/default" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local version
  version=$("${curl_admin[@]}" "$url/version" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')
  [ -n "$version" ] || die "no gitVersion in $url/version"

  cat >"$dir/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: dm-test
    cluster:
      server: $url
      certificate-authority-data: $(base64 -w0 <"$dir/ca.crt")
users:
  - name: dm-admin
    user:
      token: $admin_token
contexts:
  - name: dm-test
    context:
      cluster: dm-test
      user: dm-admin
      namespace: default
current-context: dm-test
KUBECONFIG
  cat >"$dir/env" <<ENV
export DM_K8S_KUBECONFIG='$dir/kubeconfig'
export DM_K8S_NOROLE_TOKEN='$norole_token'
export DM_K8S_VERSION='$version'
ENV
  say "kube-apiserver $version ready at $url (etcd pid $(cat "$dir/etcd.pid"), apiserver pid $(cat "$dir/kube-apiserver.pid"))"
}

case "${1:-}" in
  start)
    [ -n "${2:-}" ] || die "usage: $0 start DIR [KUBE_APISERVER] [ETCD]"
    start "$2" "${3:-$HOME/.cache/dm-kube-apiserver/v1.20.2/kube-apiserver}" "${4:-$(command -v etcd || echo /usr/bin/etcd)}"
    ;;
  stop)
    [ -n "${2:-}" ] || die "usage: $0 stop DIR"
    stop "$2"
    ;;
  *) die "usage: $0 start DIR [KUBE_APISERVER] [ETCD] | stop DIR" ;;
esac
