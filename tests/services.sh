#!/usr/bin/env bash
# Start or stop the services the integration tests need, on loopback only:
# a throwaway PostgreSQL 15 cluster. The Pulsar broker (pulsar-lite) is started by the tests themselves
# (tests/fixtures/broker.py), because some tests restart it. `start` writes .services/env for the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD/.services
PGBIN=/usr/lib/postgresql/15/bin
PGROOT=$ROOT/pg

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  stop >/dev/null 2>&1 || true
  mkdir -p "$ROOT" "$PGROOT"
  chmod 755 "$ROOT"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGROOT"
  local port; port=$(free_port)
  as_postgres $PGBIN/initdb -D "$PGROOT/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  as_postgres $PGBIN/pg_ctl -D "$PGROOT/data" -l "$PGROOT/server.log" -w -t 30 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PGROOT -c fsync=off -c synchronous_commit=off" >/dev/null
  psql -q -h 127.0.0.1 -p "$port" -U postgres -c 'create database app' >/dev/null
  cat > "$ROOT/env" <<ENV
export TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$port/app
export TEST_PG_CTL="$PGBIN/pg_ctl -D $PGROOT/data"
export TEST_PG_PORT=$port
export REQUIRE_INTEGRATION=1
ENV
  echo "services: PostgreSQL on 127.0.0.1:$port"
}

stop() {
  if [ -f "$PGROOT/data/postmaster.pid" ]; then
    as_postgres $PGBIN/pg_ctl -D "$PGROOT/data" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$PGROOT" "$ROOT/env"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
