#!/usr/bin/env bash
# The crash-recovery proof (issue #7; server/tests/crash/):
#
#   make crash                 10 kills per engine (SQLite and PostgreSQL)
#   make crash KILLS=50        the documented full run: 50 kills per engine
#   make crash SEED=n          replay a schedule (printed by every run)
#   make crash ENGINE=sqlite   one engine (sqlite|postgres|both)
#
# Runs the real `rowcol` binary with its worker on, SIGKILLs it at seeded
# random moments while approvals, double submits, clock advances and rail
# faults are in flight, restarts it on the same database, and at the end
# checks the invariants through the simulated rails' own APIs and RowCol's
# database. Uses the release binary ($TARGET_DIR/release/rowcol) when it
# exists (and its site, target/site, when that exists), else the debug
# binary cargo builds for the test. Installs nothing; PostgreSQL is started
# when it is down (scripts/ensure-postgres.sh).
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), TARGET_DIR, site_root_for

"$ROOT/scripts/ensure-postgres.sh"

export CRASH_KILLS="${KILLS:-${CRASH_KILLS:-10}}"
[ -z "${SEED:-}" ] || export CRASH_SEED="$SEED"
[ -z "${ENGINE:-}" ] || export CRASH_ENGINE="$ENGINE"
if [ -z "${ROWCOL_TEST_PG_URL:-}" ]; then
  case "${DATABASE_URL:-}" in
    postgres://*|postgresql://*) export ROWCOL_TEST_PG_URL="$DATABASE_URL" ;;
    *) export ROWCOL_TEST_PG_URL="postgres://postgres@127.0.0.1:5432/postgres" ;;
  esac
fi
if [ -z "${ROWCOL_CRASH_BIN:-}" ] && [ -x "$TARGET_DIR/release/rowcol" ]; then
  export ROWCOL_CRASH_BIN="$TARGET_DIR/release/rowcol"
  release_site="$ROOT/$(site_root_for release)"
  if [ -z "${CRASH_SITE_ROOT:-}" ] && [ -d "$release_site/pkg" ]; then
    export CRASH_SITE_ROOT="$release_site"
  fi
fi
echo "[crash] binary: ${ROWCOL_CRASH_BIN:-the debug build}; kills per engine: $CRASH_KILLS; engine: ${CRASH_ENGINE:-both}"

# The Leptos build variables cargo-leptos builds the server with (derived in
# scripts/lib.sh; any other set recompiles every Leptos crate).
load_leptos_test_env
env "${LEPTOS_TEST_ENV[@]}" \
  cargo test -q -p app -p clock -p sandbox -p seal -p server --features app/ssr --test crash -- \
    --exact crash_recovery --ignored --nocapture
