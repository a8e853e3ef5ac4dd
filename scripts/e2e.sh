#!/usr/bin/env bash
# Run the Playwright suite (end2end/) against an already-built server.
#
#   scripts/e2e.sh [debug|release]        (default: debug)
#
# Builds nothing: run `cargo leptos build [--release]` first (scripts/test.sh
# does). Starts <target>/<profile>/rowcol from the workspace root on a fresh
# SQLite database, waits for GET /readyz == 200, runs `npx playwright test`
# (both projects: JavaScript on and off), and always stops the server.
#
# Environment:
#   ROWCOL_E2E_ADDR          listen address      (default 127.0.0.1:3900)
#   ROWCOL_E2E_DATABASE_URL  database to use     (default: a new SQLite file in a temp dir)
#   ROWCOL_DEMO_PASSWORD     demo users' password (default demo-password-e2e)
#   CARGO_TARGET_DIR         where cargo put the binary (default: see scripts/lib.sh,
#                            <root>/target unless a build cache dir is in use)
#   LEPTOS_SITE_ROOT         where cargo-leptos put the site (default: the
#                            profile's own, target/site for release and
#                            target/site-debug for debug, relative to the root;
#                            it does NOT follow CARGO_TARGET_DIR)
#   ROWCOL_SANDBOX_START     the sandbox's first day (default 2026-11-28): the
#                            demo world is a function of it
#   ROWCOL_E2E_KEEP          a directory: run in it (database, server.log) and
#                            keep it, with scan.env (mode 600) holding what the
#                            secret scan needs (server/tests/secret_scan.rs:
#                            database URL, log path, the key and the secrets the
#                            server ran with). Emptied of an earlier run first.
#   ROWCOL_ENCRYPTION_KEY, ROWCOL_RAMP_WEBHOOK_SECRET, ROWCOL_PLAID_SECRET,
#   ROWCOL_QBO_WEBHOOK_VERIFIER
#                            passed to the server as given; on the fresh
#                            temp database each unset one is generated per run
#                            (so the key is known, and data/secret.key unused)
#   Extra arguments after the profile go to `playwright test` (e.g. --project=no-js).
set -euo pipefail

PROFILE="${1:-debug}"
shift || true
case "$PROFILE" in
  debug|release) ;;
  *) echo "usage: $0 [debug|release] [playwright args...]" >&2; exit 2 ;;
esac

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), TARGET_DIR, site_root_for
SITE_ROOT="${LEPTOS_SITE_ROOT:-$(site_root_for "$PROFILE")}"
export ROWCOL_SANDBOX_START="${ROWCOL_SANDBOX_START:-$TEST_SANDBOX_START_A}"
# The specs know the first 24 clients of a world that changes only as they
# make it (the demo world has 44 and lives on its own).
export ROWCOL_SANDBOX_CLIENTS="${ROWCOL_SANDBOX_CLIENTS:-24}"
export ROWCOL_SANDBOX_LIVING="${ROWCOL_SANDBOX_LIVING:-false}"
# The server resolves the site root (and anything else relative) from ROOT.

say() { printf '[e2e %s] %s\n' "$PROFILE" "$*"; }
die() { printf '[e2e %s] ERROR: %s\n' "$PROFILE" "$*" >&2; exit 1; }

BIN="$TARGET_DIR/$PROFILE/rowcol"
ADDR="${ROWCOL_E2E_ADDR:-127.0.0.1:3900}"
BASE_URL="http://$ADDR"
export ROWCOL_DEMO_PASSWORD="${ROWCOL_DEMO_PASSWORD:-demo-password-e2e}"

[ -x "$BIN" ] || die "$BIN not found: build first (cargo leptos build$([ "$PROFILE" = release ] && echo ' --release'))"
[ -d "$SITE_ROOT/pkg" ] || die "$SITE_ROOT/pkg not found: cargo leptos build writes the wasm/js/css there"
[ -x end2end/node_modules/.bin/playwright ] || die "Playwright missing: run scripts/install-tools.sh"

# A server left over on the port would silently be tested instead of ours.
if curl -s -o /dev/null --max-time 2 "$BASE_URL/readyz"; then
  die "something already answers on $BASE_URL; stop it or set ROWCOL_E2E_ADDR"
fi

KEEP="${ROWCOL_E2E_KEEP:-}"
if [ -n "$KEEP" ]; then
  mkdir -p "$KEEP"
  TMP="$(cd "$KEEP" && pwd)"
  rm -f "$TMP/e2e.db" "$TMP/e2e.db-wal" "$TMP/e2e.db-shm" "$TMP/server.log" "$TMP/scan.env"
else
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/rowcol-e2e.XXXXXX")"
fi
LOG="$TMP/server.log"
if [ -n "${ROWCOL_E2E_DATABASE_URL:-}" ]; then
  DB_URL="$ROWCOL_E2E_DATABASE_URL"
else
  DB_URL="sqlite://$TMP/e2e.db"
  # An empty file is a valid empty SQLite database; creating it means the
  # server need not open with create_if_missing (sqlx's default is not to).
  : >"$TMP/e2e.db"
  # A fresh database: fresh secrets, known to this script (the secret scan
  # opens the sandbox state with the key and searches for the others).
  gen() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
  hexgen() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  export ROWCOL_ENCRYPTION_KEY="${ROWCOL_ENCRYPTION_KEY:-$(gen)}"
  export ROWCOL_RAMP_WEBHOOK_SECRET="${ROWCOL_RAMP_WEBHOOK_SECRET:-whsec_e2e_$(hexgen)}"
  export ROWCOL_PLAID_SECRET="${ROWCOL_PLAID_SECRET:-sandbox_e2e_$(hexgen)}"
  export ROWCOL_QBO_WEBHOOK_VERIFIER="${ROWCOL_QBO_WEBHOOK_VERIFIER:-qbo_e2e_$(hexgen)}"
fi
SERVER_PID=""
STATUS=1

cleanup() {
  local rc=$?
  [ "$STATUS" -eq 0 ] || rc=1
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo "----- last 100 lines of the server log ($LOG) -----" >&2
    tail -n 100 "$LOG" >&2 2>/dev/null || true
    echo "----- end of server log -----" >&2
    # Keep the log next to Playwright's traces/screenshots for inspection.
    mkdir -p "$ROOT/end2end/test-results" && cp "$LOG" "$ROOT/end2end/test-results/server-$PROFILE.log" 2>/dev/null || true
    say "FAILED (traces/screenshots and server log under end2end/test-results/; database kept in $TMP)"
  elif [ -z "$KEEP" ]; then
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting $BIN serve on $ADDR (db: $DB_URL, site: $SITE_ROOT, sandbox start: $ROWCOL_SANDBOX_START)"
# LEPTOS_SITE_ADDR is set too, in case the server takes its address from the
# Leptos options; RUST_LOG gives a useful log without drowning it.
LEPTOS_SITE_ROOT="$SITE_ROOT" \
LEPTOS_SITE_ADDR="$ADDR" \
ROWCOL_ADDR="$ADDR" \
DATABASE_URL="$DB_URL" \
RUST_LOG="${RUST_LOG:-info}" \
  "$BIN" serve >"$LOG" 2>&1 &
SERVER_PID=$!

# Wait (bounded) for readiness; give up early if the server dies.
deadline=$((SECONDS + 120))
until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE_URL/readyz" || true)" = 200 ]; do
  kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; die "server exited before it was ready"; }
  [ "$SECONDS" -lt "$deadline" ] || die "server not ready (GET $BASE_URL/readyz != 200) after 120 s"
  sleep 0.5
done
say "server ready after $((SECONDS + 120 - deadline)) s; running Playwright"

cd end2end
export BASE_URL
set +e
npx --no-install playwright test "$@" 2>&1 | tee "$TMP/playwright.log"
STATUS=${PIPESTATUS[0]}
set -e
# CI shows only the tail of a run: name the failed tests (and each one's first
# error line) where scripts/test.sh's summary prints them last.
if [ "$STATUS" -ne 0 ] && [ -n "${ROWCOL_FAILURE_NOTE:-}" ]; then
  {
    echo "e2e $PROFILE: $(grep -aE '^ +[0-9]+ failed' "$TMP/playwright.log" | tail -n 1 | sed 's/^ *//')"
    awk '/^ +[0-9]+ failed/{f=1; next} f && /^ +\[/{print} f && !/^ +\[/{f=0}' "$TMP/playwright.log" | head -n 10
    grep -aE '^ +(Error|TimeoutError|expect)' "$TMP/playwright.log" | head -n 5
  } >>"$ROWCOL_FAILURE_NOTE" || true
fi
cd "$ROOT"
[ "$STATUS" -eq 0 ] && say "passed" || say "Playwright failed (exit $STATUS)"
if [ -n "$KEEP" ]; then
  # Stop the server first: its last writes (the sandbox state, the WAL)
  # belong to what is scanned.
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  key="${ROWCOL_ENCRYPTION_KEY:-}"
  # A given database without a given key: the server's own data/secret.key.
  if [ -z "$key" ] && [ -f "${ROWCOL_DATA_DIR:-data}/secret.key" ]; then
    key="$(cat "${ROWCOL_DATA_DIR:-data}/secret.key")"
  fi
  (
    umask 077
    {
      printf 'ROWCOL_SCAN_DATABASE_URL=%q\n' "$DB_URL"
      printf 'ROWCOL_SCAN_LOGS=%q\n' "$LOG"
      printf 'ROWCOL_ENCRYPTION_KEY=%q\n' "$key"
      printf 'ROWCOL_DEMO_PASSWORD=%q\n' "$ROWCOL_DEMO_PASSWORD"
      for v in ROWCOL_RAMP_WEBHOOK_SECRET ROWCOL_QBO_WEBHOOK_VERIFIER ROWCOL_PLAID_SECRET ROWCOL_PREVIOUS_ENCRYPTION_KEYS \
               ROWCOL_QBO_CLIENT_SECRET ROWCOL_RAMP_CLIENT_SECRET ROWCOL_STRIPE_SECRET_KEY; do
        [ -z "${!v:-}" ] || printf '%s=%q\n' "$v" "${!v}"
      done
    } >"$TMP/scan.env"
  )
  say "kept for the secret scan: $TMP (scan.env, server.log$([ -z "${ROWCOL_E2E_DATABASE_URL:-}" ] && echo ', e2e.db'))"
fi
exit "$STATUS"
