#!/usr/bin/env bash
# `make check`: the edit-compile-test loop (issue #17), a few minutes warm.
#
#   rustfmt check, clippy -D warnings over the server build (the test build's
#   features and Leptos environment, so it shares their dependency
#   checks), then the unit tests and every integration test on SQLite.
#
# What it leaves to `make test`: PostgreSQL, the second sandbox date, the
# wasm build and its clippy, the official client libraries, the simulation
# seeds and planted bugs, Playwright, the release build and crash recovery.
# Run `make check` while you work, `make test` before you push.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH, LEPTOS_TEST_ENV
load_leptos_test_env

T0=$SECONDS
steps=()
step() {
  local name="$1" t=$SECONDS
  shift
  echo "[check] == $name"
  "$@"
  steps+=("$(printf '%5ss  %s' "$((SECONDS - t))" "$name")")
}
trap 'rc=$?; printf "[check] %s\n" "${steps[@]}"; if [ "$rc" -eq 0 ]; then echo "[check] passed in $((SECONDS - T0))s"; else echo "[check] FAILED (exit $rc) after $((SECONDS - T0))s"; fi' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

step "cargo fmt --check" cargo fmt --all -- --check
step "clippy -D warnings (server build)" env "${LEPTOS_TEST_ENV[@]}" \
  cargo clippy -q -p app -p clock -p sandbox -p seal -p server --features app/ssr --all-targets -- -D warnings
# PostgreSQL's twins and the three-instance run are skipped: `make test` runs them.
step "unit + SQLite integration tests" env "${LEPTOS_TEST_ENV[@]}" \
  ROWCOL_SANDBOX_START="$TEST_SANDBOX_START_A" \
  cargo test -q -p app -p clock -p sandbox -p seal -p server --features app/ssr -- --skip postgres:: --skip multi::
