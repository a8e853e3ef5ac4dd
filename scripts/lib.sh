# shellcheck shell=bash
# Shared settings for the build/test scripts. Source it; do not run it.
#
# Sets and exports:
#   ROOT               the workspace root (and cd's there)
#   PATH               with cargo's bin dir first (cargo-leptos, wasm-bindgen)
#   CARGO_TARGET_DIR   only when a build cache outside the clone is chosen (below)
# Sets (not exported):
#   TARGET_DIR         absolute cargo target dir: where the server binary lands
#   SITE_ROOT          where cargo-leptos writes the site (wasm/js/css), relative
#                      to ROOT

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# --- Build cache outside the clone --------------------------------------------
# CI starts from a fresh clone every time; a cold debug+release build costs
# ~12 minutes, a warm one seconds. So unless the caller chose a target dir,
# reuse a cache directory that lives outside the clone. It is only *created*
# in CI (ROWCOL_CI=1 from .ci/run, or CI=...), so that a developer's ad-hoc
# `make test` in some worktree does not silently start sharing one target dir
# (and one cargo build lock, and one target/debug/rowcol) with other
# worktrees. ROWCOL_NO_TARGET_CACHE=1 opts out.
#
# Note: cargo-leptos puts the *site* at the workspace-relative `site-root` from
# Cargo.toml ("target/site" under the clone), NOT under CARGO_TARGET_DIR; only
# the cargo artifacts (including its wasm build dir <target>/front) move. So
# the server binary follows CARGO_TARGET_DIR while LEPTOS_SITE_ROOT stays
# target/site. (Read from cargo-leptos 0.3.10 src/config: site_root comes from
# the metadata/LEPTOS_SITE_ROOT, the bin dir from `cargo metadata`'s
# target_directory, the front dir from target_directory.join("front").)
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ "${ROWCOL_NO_TARGET_CACHE:-0}" != 1 ]; then
  for candidate in /var/cache/rowcol-target "$HOME/.cache/rowcol-target"; do
    if [ -d "$candidate" ] && [ -w "$candidate" ]; then
      export CARGO_TARGET_DIR="$candidate"
      break
    fi
  done
  if [ -z "${CARGO_TARGET_DIR:-}" ] && { [ "${ROWCOL_CI:-0}" = 1 ] || [ -n "${CI:-}" ]; }; then
    if [ "$(id -u)" -eq 0 ]; then candidate=/var/cache/rowcol-target; else candidate="$HOME/.cache/rowcol-target"; fi
    mkdir -p "$candidate" && export CARGO_TARGET_DIR="$candidate"
  fi
fi

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
