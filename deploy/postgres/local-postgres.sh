#!/usr/bin/env bash
# A throwaway local PostgreSQL (Debian's postgresql package) for tests, the failover benchmark and a demo of the
# shared store: its own data folder, 127.0.0.1 only, a `sameday` role with a generated password in a file.
#   deploy/postgres/local-postgres.sh start    install if needed, initialise once, start, wait
#   deploy/postgres/local-postgres.sh stop     stop it (the data folder stays)
#   deploy/postgres/local-postgres.sh url      the store URL a worker configuration takes
#   deploy/postgres/local-postgres.sh password-file
# SAMEDAY_PG_DIR (default /tmp/sameday-postgres) and SAMEDAY_PG_PORT (default 5433) choose where.
# Run as root (the server itself runs as the `postgres` user) or as an ordinary user who owns SAMEDAY_PG_DIR.
set -euo pipefail
dir="${SAMEDAY_PG_DIR:-/tmp/sameday-postgres}"
port="${SAMEDAY_PG_PORT:-5433}"
command="${1:-start}"

if ! dpkg -s postgresql >/dev/null 2>&1; then
  echo "local-postgres: installing postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # policy-rc.d may forbid starting Debian's own cluster at install time; this script runs its own.
  apt-get install -y -q postgresql
fi
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
  url) echo "postgres://sameday@127.0.0.1:$port/sameday"; exit 0 ;;
  password-file) echo "$dir/password"; exit 0 ;;
  stop)
    [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop|url|password-file" >&2; exit 2 ;;
esac

if [ ! -f "$dir/data/PG_VERSION" ]; then
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  # The role's password: random, in a file only root and the owner read (workers take `storePasswordFile`).
  umask 077
  head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
# Durable like the SQLite store (synchronous=FULL): a commit is on disk before the worker acks.
fsync = on
synchronous_commit = on
CONF
  umask 022
fi
if ! as_owner "$bin/pg_isready" -q -h "$dir" -p "$port"; then
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
fi
password="$(cat "$dir/password")"
as_owner "$bin/psql" -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT 'CREATE ROLE sameday LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sameday') \gexec
ALTER ROLE sameday PASSWORD '$password';
SELECT 'CREATE DATABASE sameday OWNER sameday' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sameday') \gexec
SQL
echo "local-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') is up on 127.0.0.1:$port (store postgres://sameday@127.0.0.1:$port/sameday, password in $dir/password)"
