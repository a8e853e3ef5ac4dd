#!/usr/bin/env bash
# The project's test command (`make test`; CI runs .ci/run -> make test).
#
#   install tools -> PostgreSQL up -> rustfmt check -> cargo leptos build
#   (debug, site in target/site-debug) -> cargo test (app with ssr + server
#   incl. its integration tests on SQLite and PostgreSQL, in one invocation:
#   see cargo_test below) -> Playwright on the debug build -> the secret
#   scan of that run's database and log -> clippy -D
#   warnings -> cargo leptos build --release (site in target/site) -> the
#   release binary refuses the debug site -> crash recovery (the release
#   binary SIGKILLed 10 times per engine) -> Playwright on the release build.
#
# The sandbox start is pinned in every test, to two different dates across
# the run (TEST_SANDBOX_START_A/B in scripts/lib.sh): the integration suite
# runs on both, the release e2e run on A, the debug e2e run on B.
#
# Prints a timing line per step and a summary at the end (also on failure).
# Measured 2026-11-28 on a 2-core machine of the slower kind: installing the
# tools took ~48 min on the new machine (cargo-leptos, wasm-bindgen-cli,
# Chromium), then this script took 4,272 s with only the debug dependencies
# built (cold: the wasm front and every release crate). The largest steps:
# the 300-seed simulation (839 s), cargo test (761 s), the release build
# (957 s), clippy (558 s). CI reuses its build cache (scripts/lib.sh).
# 2026-12-07, after issue #17 (dependencies at opt-level 1 in debug, the
# sandbox saving only what changed): 1,789 s on a clean clone with the
# release and clippy builds cold (503 s and 239 s of it); README has the
# step table.
#
# Environment:
#   ROWCOL_TEST_PG_URL   PostgreSQL for the integration tests (default
#                        postgres://postgres@127.0.0.1:5432/postgres, or the
#                        caller's DATABASE_URL if that is a postgres:// URL)
#   CARGO_TARGET_DIR     see scripts/lib.sh (in CI: a build cache outside the clone)
#   ROWCOL_SKIP_RELEASE=1  stop after the debug e2e run (local iteration only)
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH, CARGO_TARGET_DIR, TARGET_DIR, site_root_for

say() { printf '[test] %s\n' "$*"; }

# --- step runner with timings -------------------------------------------------
TIMINGS=()
CURRENT_STEP=""
T0=$SECONDS
step() {
  local name="$1"; shift
  CURRENT_STEP="$name"
  local start=$SECONDS
  say "=== $name"
  "$@"
  local took=$((SECONDS - start))
  TIMINGS+=("$(printf '%6ss  %s' "$took" "$name")")
  say "=== $name: ok in ${took}s"
  CURRENT_STEP=""
}
BUILD_LOG=""
# Steps append what failed (test names, first error lines) here; the summary
# prints it last, where a CI log cut to its tail still shows it.
ROWCOL_FAILURE_NOTE="$(mktemp "${TMPDIR:-/tmp}/rowcol-failures.XXXXXX")"
export ROWCOL_FAILURE_NOTE
summary() {
  local rc=$1
  [ -z "$BUILD_LOG" ] || rm -f "$BUILD_LOG"
  echo
  say "timings:"
  for t in "${TIMINGS[@]}"; do echo "  $t"; done
  if [ "$rc" -ne 0 ]; then
    say "FAILED in step: ${CURRENT_STEP:-?} (exit $rc) after $((SECONDS - T0))s"
    [ ! -s "$ROWCOL_FAILURE_NOTE" ] || sed 's/^/[test]   /' "$ROWCOL_FAILURE_NOTE" | head -n 20
  else
    say "all steps passed in $((SECONDS - T0))s"
  fi
  rm -f "$ROWCOL_FAILURE_NOTE"
}
# Leave no test databases behind (each PostgreSQL test creates one, ~13 MB:
# a full run leaves gigabytes), whatever the outcome.
cleanup() {
  local rc=$?
  drop_old_test_databases >/dev/null 2>&1 || true
  summary "$rc"
}
trap cleanup EXIT
# A stopped run is never a success. Without these, the EXIT trap of a run
# killed by SIGTERM or SIGINT saw the status of the last command that had
# finished (often 0) and printed "all steps passed" (issue #17).
trap 'exit 143' TERM
trap 'exit 130' INT

# Each step chooses its own site (debug or release): a LEPTOS_SITE_ROOT left
# in the caller's shell (e.g. from running cargo test by hand) would point
# the release e2e run at the debug site, which the release binary refuses.
unset LEPTOS_SITE_ROOT
DEBUG_SITE="$(site_root_for debug)"
RELEASE_SITE="$(site_root_for release)"
say "workspace $ROOT; cargo target dir $TARGET_DIR; sites: debug $DEBUG_SITE, release $RELEASE_SITE"
say "sandbox start dates: $TEST_SANDBOX_START_A and $TEST_SANDBOX_START_B"

# --- PostgreSQL URL for the server's integration tests --------------------------
if [ -z "${ROWCOL_TEST_PG_URL:-}" ]; then
  case "${DATABASE_URL:-}" in
    postgres://*|postgresql://*) ROWCOL_TEST_PG_URL="$DATABASE_URL" ;;
    *) ROWCOL_TEST_PG_URL="postgres://postgres@127.0.0.1:5432/postgres" ;;
  esac
fi
export ROWCOL_TEST_PG_URL

# --- The environment cargo-leptos builds the server with ------------------------
# Derived in scripts/lib.sh (`leptos_test_env`, documented there) and used by
# every script that runs cargo test.
load_leptos_test_env || exit 1
say "cargo test runs with: ${LEPTOS_TEST_ENV[*]}"

# `cargo leptos build -v` logs "Cargo envs: K=V K=V ..." for the server (and the
# wasm) build. Compare with what we derived; a mismatch only costs time (a
# rebuild of the Leptos crates), so warn loudly instead of failing.
check_leptos_env() {
  local log="$1" want line
  want="${LEPTOS_TEST_ENV[*]}"
  while IFS= read -r line; do
    [ "$line" = "$want" ] && { say "cargo-leptos used exactly the environment cargo test will get"; return 0; }
  done < <(sed -e 's/\x1b\[[0-9;]*m//g' "$log" | sed -n 's/.*Cargo envs: //p')
  say "WARNING: cargo-leptos's server build environment differs from the cargo test one;"
  say "WARNING: cargo test will recompile the Leptos crates. cargo-leptos logged:"
  sed -e 's/\x1b\[[0-9;]*m//g' "$log" | sed -n 's/.*Cargo envs: /  /p' >&2
  return 0
}

BUILD_LOG="$(mktemp "${TMPDIR:-/tmp}/rowcol-leptos-build.XXXXXX")"
leptos_build_debug() {
  # -v: debug logging, which includes the "Cargo envs:" line checked above.
  LEPTOS_SITE_ROOT="$DEBUG_SITE" cargo leptos build --split -v 2>&1 | tee "$BUILD_LOG"
  check_leptos_env "$BUILD_LOG"
}

leptos_build_release() {
  # wasm-opt must be binaryen 132 from npm: Debian's binaryen 108 produces a
  # wasm that never hydrates. cargo-leptos takes the first wasm-opt on PATH.
  local opt
  opt="$(PATH="$ROOT/end2end/node_modules/.bin:$PATH" command -v wasm-opt)"
  [ "$opt" = "$ROOT/end2end/node_modules/.bin/wasm-opt" ] || { say "wrong wasm-opt: $opt"; return 1; }
  LEPTOS_SITE_ROOT="$RELEASE_SITE" RUSTFLAGS="$(release_rustflags)" \
    PATH="$ROOT/end2end/node_modules/.bin:$PATH" cargo leptos build --release --split
}

# The release binary must refuse the debug site (and start on its own).
site_guard() {
  "$ROOT/scripts/check-site-guard.sh" "$TARGET_DIR/release/rowcol" "$DEBUG_SITE" "$RELEASE_SITE"
}

# app's own tests (with ssr) and server's tests incl. the integration suite run
# in ONE cargo invocation. Separately, `cargo test -p app --features ssr`
# resolves features for app's graph alone, which differ from the server build's
# (`cargo tree` shows hyper/hyper-util without `client`, log without `std`,
# sqlx without json/time, tower, tower-http, ...): it would compile a second
# copy of nearly the whole Leptos/axum stack (minutes, gigabytes). Together
# with server, features unify exactly as in cargo-leptos's server build; the
# only difference left is server's dev-dependency tempfile turning on
# bitflags/std, which recompiles tower-http -> leptos_axum, sqlx, app and
# server, but none of the core Leptos crates. Measured on the skeleton
# (2026-11-27): after `cargo leptos build`, this step compiled only bitflags,
# sqlx*, tower-http, leptos_axum, rustix, reqwest, tower-sessions-sqlx-store,
# tempfile, app and server (18 s); a second run compiled nothing, and a
# following server build compiled nothing either (both variants stay cached).
# Each PostgreSQL integration test creates its own database (rowcol_t_<uuid>);
# drop what earlier runs left behind before this run creates new ones.
drop_old_test_databases() {
  local dbs
  dbs=$(psql "$ROWCOL_TEST_PG_URL" -Atc "select datname from pg_database where datname like 'rowcol\_t\_%'") || return 0
  for db in $dbs; do
    psql "$ROWCOL_TEST_PG_URL" -qc "drop database if exists \"$db\" with (force)" >/dev/null || true
  done
}
# Runs a cargo test command with its output teed; on failure appends the
# failed tests' names to the failure note the summary prints last.
noting_failures() {
  local log rc=0
  log="$(mktemp "${TMPDIR:-/tmp}/rowcol-cargo-test.XXXXXX")"
  "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    {
      echo "failed tests:"
      awk '/^failures:$/{f=1; next} f && /^    [^ ]+$/{print; next} {f=0}' "$log" | sort -u | head -n 12
      grep -aE "panicked at|^error(\[|:)" "$log" | head -n 4
    } >>"$ROWCOL_FAILURE_NOTE" || true
  fi
  rm -f "$log"
  return "$rc"
}
cargo_test() {
  drop_old_test_databases
  noting_failures env "${LEPTOS_TEST_ENV[@]}" ROWCOL_SANDBOX_START="$TEST_SANDBOX_START_A" \
    cargo test -p app -p clock -p sandbox -p seal -p server --features app/ssr
  # The integration suite again with the sandbox starting on the other date
  # (the binaries are built). The three-instance test is about concurrency,
  # not the calendar: once is enough.
  drop_old_test_databases
  noting_failures env "${LEPTOS_TEST_ENV[@]}" ROWCOL_SANDBOX_START="$TEST_SANDBOX_START_B" \
    cargo test -p app -p server --features app/ssr --test api -- --skip multi::
  drop_old_test_databases
}

# The crash-recovery proof (issue #7, server/tests/crash/, ignored in the
# plain run): the release binary SIGKILLed 10 times per engine under traffic
# and restarted on the same database, then the invariants through the rails'
# APIs. Full size: `make crash KILLS=50`. The test binary is already built
# by cargo_test (same packages, features and environment: nothing recompiles).
# Issue #17 §6: what a person downloads for the console, printed every run
# and held under limits (scripts/bundle-size.sh) so that pages added later
# cannot quietly grow it.
bundle_size() {
  "$ROOT/scripts/bundle-size.sh" "$ROOT/$RELEASE_SITE"
}

crash_release() {
  env "${LEPTOS_TEST_ENV[@]}" ROWCOL_SANDBOX_START="$TEST_SANDBOX_START_A" \
    ROWCOL_CRASH_BIN="$TARGET_DIR/release/rowcol" CRASH_SITE_ROOT="$ROOT/$RELEASE_SITE" \
    CRASH_KILLS=10 CRASH_ENGINE=both \
    cargo test -p app -p clock -p sandbox -p seal -p server --features app/ssr --test crash -- \
      --exact crash_recovery --ignored --nocapture
}

# Issue #8: no plaintext token, code, secret or password in RowCol's tables
# or its log after the debug e2e run (server/tests/secret_scan.rs, ignored in
# the plain run). scripts/e2e.sh kept the database and log in $E2E_KEEP with
# scan.env: the database URL, the log, the key and the secrets the server
# ran with. The test binary is built by cargo_test (nothing recompiles). The
# kept directory is removed when the scan passes, kept for inspection if not.
E2E_KEEP=""
secret_scan() (
  set -a
  # shellcheck disable=SC1091
  . "$E2E_KEEP/scan.env"
  set +a
  env "${LEPTOS_TEST_ENV[@]}" \
    cargo test -p app -p clock -p sandbox -p seal -p server --features app/ssr --test secret_scan -- \
      --exact e2e_secret_scan --ignored --nocapture
  rm -rf "$E2E_KEEP"
)

step "install tools" "$ROOT/scripts/install-tools.sh"
step "ensure postgres" "$ROOT/scripts/ensure-postgres.sh"
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo leptos build (debug)" leptos_build_debug
step "cargo test -p app -p clock -p sandbox -p seal -p server --features app/ssr (PG: $ROWCOL_TEST_PG_URL)" cargo_test
# Issue #9: the rails' pinned official client libraries against the
# simulators (the example is built with cargo test's environment).
judges() {
  env "${LEPTOS_TEST_ENV[@]}" "$ROOT/scripts/judges.sh"
}
step "the official client libraries judge the simulators" judges
# The deterministic simulation (issue #7): 300 seeds on SQLite, over which
# every fault kind must fire, 50 on PostgreSQL, then the planted-bug build
# (each planted bug must be caught). Seeds run two at a time.
step "simulation: 300 seeds on SQLite" env SEEDS=300 SIM_REQUIRE_ALL_FAULTS=1 "$ROOT/scripts/simulate.sh"
step "simulation: 50 seeds on PostgreSQL" env SEEDS=50 DATABASE_URL="$ROWCOL_TEST_PG_URL" "$ROOT/scripts/simulate.sh"
step "simulation catches each planted bug" "$ROOT/scripts/planted.sh"
E2E_KEEP="$(mktemp -d "${TMPDIR:-/tmp}/rowcol-e2e-keep.XXXXXX")"
# tower_http at debug: the log gets a line per request (method and path), so
# the scan also proves no query string (OAuth code, state) was logged.
step "e2e (debug, sandbox from $TEST_SANDBOX_START_B)" env ROWCOL_SANDBOX_START="$TEST_SANDBOX_START_B" ROWCOL_E2E_KEEP="$E2E_KEEP" RUST_LOG="${RUST_LOG:-info},tower_http=debug" "$ROOT/scripts/e2e.sh" debug
step "secret scan of the debug e2e run's tables and log" secret_scan
# clippy -D warnings for every package/feature set (scripts/lint.sh); after
# the tests so a lint never hides a test result.
step "clippy -D warnings" "$ROOT/scripts/lint.sh"
if [ "${ROWCOL_SKIP_RELEASE:-0}" = 1 ]; then
  say "ROWCOL_SKIP_RELEASE=1: skipping the release build and its e2e run"
  exit 0
fi
step "cargo leptos build --release" leptos_build_release
step "bundle size (release wasm split per page, gzip -9)" bundle_size
step "release binary refuses the debug site" site_guard
step "crash recovery (release, 10 kills per engine)" crash_release
step "e2e (release, sandbox from $TEST_SANDBOX_START_A)" env ROWCOL_SANDBOX_START="$TEST_SANDBOX_START_A" "$ROOT/scripts/e2e.sh" release
