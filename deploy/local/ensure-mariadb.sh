#!/usr/bin/env bash
# Makes sure MariaDB listens on 127.0.0.1:${MARIADB_PORT:-3306} and that `root` with an empty
# password can log in over TCP and use database `test`, as the tests expect.
# Installs it from the distribution's packages when absent, starts it when not running, and fixes
# Debian's unix-socket-only root authentication. Idempotent. Prints one line of what it did.
#   --install-only   install the packages if absent and fix root's login if the server is up,
#                    but start nothing (dm-demo starts and stops it)
set -euo pipefail

install_only=no
[ "${1:-}" = "--install-only" ] && install_only=yes

port="${MARIADB_PORT:-3306}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
tcp_login() { mariadb --protocol=TCP -h 127.0.0.1 -P "$port" -u root -e 'SELECT 1' >/dev/null 2>&1; }
client() { command -v mariadb >/dev/null 2>&1; }

did=""
if [ "$install_only" = yes ] && ! listening; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "mariadb: installing mariadb-server from the distribution's packages"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  echo "mariadb: installed, not running (dm-demo starts it)"
  exit 0
fi
if ! listening; then
  bin="$(command -v mariadbd || true)"
  [ -n "$bin" ] || { [ -x /usr/sbin/mariadbd ] && bin=/usr/sbin/mariadbd; } || true
  if [ -z "$bin" ]; then
    echo "mariadb: installing mariadb-server from the distribution's packages"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mariadb-server mariadb-client >/dev/null
    bin="$(command -v mariadbd || echo /usr/sbin/mariadbd)"
  fi
  $sudo mkdir -p /run/mysqld
  $sudo chown mysql:mysql /run/mysqld 2>/dev/null || true
  $sudo start-stop-daemon --start --oknodo --background --exec "$bin"
  for _ in $(seq 1 150); do
    listening && break
    sleep 0.1
  done
  listening || { echo "mariadb: $bin did not start listening on 127.0.0.1:$port" >&2; exit 1; }
  did="started $bin"
fi

client || { echo "mariadb: the mariadb client is missing (apt-get install mariadb-client)" >&2; exit 1; }

if ! tcp_login; then
  # ERROR 1698: root uses unix_socket auth only. Fix it through the socket, as the OS root user.
  $sudo mariadb -u root -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;"
  did="${did:+$did, }fixed root authentication"
fi
mariadb --protocol=TCP -h 127.0.0.1 -P "$port" -u root -e 'CREATE DATABASE IF NOT EXISTS test' \
  || { echo "mariadb: root cannot log in over TCP on 127.0.0.1:$port" >&2; exit 1; }

echo "mariadb: ${did:-already} listening on 127.0.0.1:$port (root, empty password, database test)"
