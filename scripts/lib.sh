# shellcheck shell=bash
# Shared settings for the build/test scripts. Source it; do not run it.
#
# Sets and exports:
#   ROOT               the workspace root (and cd's there)
#   PATH               with cargo's bin dir first (cargo-leptos, wasm-bindgen)
#   CARGO_TARGET_DIR   in CI, a build cache outside the clone (below)
# Sets (not exported):
#   TARGET_DIR         absolute cargo target dir: where the server binary lands
#   site_root_for P    where cargo-leptos writes profile P's site (wasm/js/css),
#                      relative to ROOT: release -> target/site, debug ->
#                      target/site-debug. Each build serves only its own
#                      bundle (the binary checks the build stamp at start).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# --- Build cache outside the clone (CI only) ------------------------------------
# CI starts from a fresh clone every time; a cold debug+release build costs
# ~12 minutes (~9 of them debug on a busy machine), a warm one seconds. So in CI
# (ROWCOL_CI=1, set by .ci/run, or CI=...), unless the caller chose a target
# dir, reuse a cache directory outside the clone -- /var/cache/rowcol-target
# or ~/.cache/rowcol-target, whichever exists -- and create it when absent so
# the next CI run is warm.
# Deliberately NOT done for local runs: several worktrees of this repository
# live on one machine, and sharing a target dir would make their builds queue
# on one cargo lock and, worse, overwrite each other's <target>/debug/rowcol
# between one worktree's build and its e2e run. Locally, set CARGO_TARGET_DIR
# yourself if you want that. ROWCOL_NO_TARGET_CACHE=1 opts out in CI.
#
# cargo-leptos puts the *site* at the workspace-relative `site-root` from
# Cargo.toml ("target/site" under the clone), NOT under CARGO_TARGET_DIR; only
# cargo's artifacts move (including cargo-leptos's wasm build dir
# <target>/front). So the server binary follows CARGO_TARGET_DIR while
# LEPTOS_SITE_ROOT stays target/site. (cargo-leptos 0.3.10 src/config: the
# site root comes from the metadata or LEPTOS_SITE_ROOT, the bin dir from
# `cargo metadata`'s target_directory, the front dir from
# target_directory.join("front").)
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ "${ROWCOL_NO_TARGET_CACHE:-0}" != 1 ] \
   && { [ "${ROWCOL_CI:-0}" = 1 ] || [ -n "${CI:-}" ]; }; then
  for candidate in /var/cache/rowcol-target "$HOME/.cache/rowcol-target"; do
    if [ -d "$candidate" ] && [ -w "$candidate" ]; then
      export CARGO_TARGET_DIR="$candidate"
      break
    fi
  done
  if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    if [ "$(id -u)" -eq 0 ]; then candidate=/var/cache/rowcol-target; else candidate="$HOME/.cache/rowcol-target"; fi
    mkdir -p "$candidate" && export CARGO_TARGET_DIR="$candidate"
  fi
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
# Debug and release builds keep separate sites: a release binary serving the
# debug wasm renders pages that never hydrate. cargo-leptos takes the site
# root from LEPTOS_SITE_ROOT when set (it overrides the metadata's
# `site-root`), and bakes it into the server binary it builds.
site_root_for() {
  case "$1" in
    release) echo "target/site" ;;
    *) echo "target/site-debug" ;;
  esac
}

# The sandbox's first day for test runs (integration tests, e2e): the demo
# world is a function of it, so no test depends on today's date.
# scripts/test.sh runs the suites on two different dates. (`make run` leaves
# ROWCOL_SANDBOX_START alone: a person's sandbox starts today.)
TEST_SANDBOX_START_A=2026-11-28   # a Saturday; the day #5 found CI red
TEST_SANDBOX_START_B=2027-03-01   # a Monday, another month and year
