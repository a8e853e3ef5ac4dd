#!/usr/bin/env bash
# Make sure the machine's PostgreSQL answers on 127.0.0.1:5432 (the server
# integration tests run against it as well as SQLite).
#
# On this machine kind PostgreSQL is started before a session, but CI runs on
# the machine "as the session left it", so it may have stopped. Debian's
# pg_ctlcluster starts it; --skip-systemctl-redirect because there is no
# systemd here.
set -euo pipefail

HOST=127.0.0.1
PORT=5432
WAIT_SECS=30

say() { printf '[ensure-postgres] %s\n' "$*"; }
die() { printf '[ensure-postgres] ERROR: %s\n' "$*" >&2; exit 1; }

if pg_isready -q -h "$HOST" -p "$PORT"; then
  say "ok: PostgreSQL accepting connections on $HOST:$PORT"
  exit 0
fi

[ -d /etc/postgresql ] || die "PostgreSQL is not answering on $HOST:$PORT and there is no /etc/postgresql to start it from"
# One cluster version is installed; if there were several, take the newest.
version="$(ls /etc/postgresql | sort -V | tail -n1)"
[ -n "$version" ] || die "no cluster version under /etc/postgresql"

say "PostgreSQL not answering on $HOST:$PORT; starting cluster $version/main"
pg_ctlcluster --skip-systemctl-redirect "$version" main start \
  || say "pg_ctlcluster returned non-zero (it may already be starting); waiting anyway"

for _ in $(seq "$WAIT_SECS"); do
  if pg_isready -q -h "$HOST" -p "$PORT"; then
    say "ok: PostgreSQL $version started and accepting connections on $HOST:$PORT"
    exit 0
  fi
  sleep 1
done

pg_lsclusters >&2 || true
die "PostgreSQL still not accepting connections on $HOST:$PORT after ${WAIT_SECS}s (tried: pg_ctlcluster --skip-systemctl-redirect $version main start)"
