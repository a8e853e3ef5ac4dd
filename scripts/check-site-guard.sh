#!/usr/bin/env bash
# Proves a binary serves only its own build's bundle:
#
#   scripts/check-site-guard.sh <binary> <foreign-site> <own-site>
#
# 1. started with LEPTOS_SITE_ROOT=<foreign-site> (e.g. the debug site behind
#    the release binary) it must exit non-zero, before serving, saying the
#    site belongs to another build;
# 2. the same check passes on <own-site>: started there, it must get as far
#    as answering GET /readyz.
set -euo pipefail
BIN="$1"; FOREIGN="$2"; OWN="$3"
say() { printf '[site-guard] %s\n' "$*"; }
die() { printf '[site-guard] FAILED: %s\n' "$*" >&2; exit 1; }
[ -x "$BIN" ] || die "$BIN not found"
[ -d "$FOREIGN/pkg" ] || die "$FOREIGN/pkg not found (build that profile first)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/rowcol-guard.XXXXXX")"
PID=""
trap '[ -z "$PID" ] || kill "$PID" 2>/dev/null || true; rm -rf "$TMP"' EXIT

set +e
LEPTOS_SITE_ROOT="$FOREIGN" DATABASE_URL="sqlite://$TMP/foreign.db" ROWCOL_ADDR=127.0.0.1:0 \
  ROWCOL_DATA_DIR="$TMP" timeout 60 "$BIN" serve >"$TMP/foreign.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || die "$BIN served the foreign site $FOREIGN (exit 0)"
[ "$rc" -ne 124 ] || die "$BIN kept running on the foreign site $FOREIGN"
grep -q "belongs to another build" "$TMP/foreign.log" || { cat "$TMP/foreign.log" >&2; die "no clear refusal in the log"; }
[ ! -s "$TMP/foreign.db" ] || die "it touched the database before refusing"
say "refused $FOREIGN: $(grep -o 'belongs to another build[^;]*' "$TMP/foreign.log" | head -1)"

ADDR=127.0.0.1:3917
: >"$TMP/own.db"
LEPTOS_SITE_ROOT="$OWN" DATABASE_URL="sqlite://$TMP/own.db" ROWCOL_ADDR="$ADDR" \
  ROWCOL_DATA_DIR="$TMP" "$BIN" serve >"$TMP/own.log" 2>&1 &
PID=$!
for _ in $(seq 240); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$ADDR/readyz" || true)" = 200 ]; then
    say "serves its own site $OWN"
    exit 0
  fi
  kill -0 "$PID" 2>/dev/null || { cat "$TMP/own.log" >&2; die "$BIN refused its own site $OWN"; }
  sleep 0.5
done
die "$BIN on its own site never became ready"
