# shellcheck shell=bash
# Shared settings for the build/test scripts. Source it; do not run it.
#
# Sets and exports:
#   ROOT               the workspace root (and cd's there)
#   PATH               with cargo's bin dir first (cargo-leptos, wasm-bindgen)
#   CARGO_TARGET_DIR   in CI, a build cache outside the clone (below)
# Sets (not exported):
#   leptos_test_env    prints the K=V environment cargo-leptos builds the
#                      server with, for `cargo test`/`clippy` to use (below)
#   LEPTOS_TEST_ENV    (after `load_leptos_test_env`) that environment as an
#                      array, for the debug site: env "${LEPTOS_TEST_ENV[@]}" cargo ...
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

# --- The environment cargo-leptos builds the server with ------------------------
# cargo-leptos 0.3.10 (src/config/project.rs `Project::to_envs`, used for the
# server build in src/compile/server.rs) runs `cargo build -p server
# --bin=rowcol` with these variables:
#   LEPTOS_OUTPUT_NAME   output-name                  rowcol
#   LEPTOS_SITE_ROOT     site-root                    target/site
#   LEPTOS_SITE_PKG_DIR  site-pkg-dir                 pkg
#   LEPTOS_SITE_ADDR     site-addr                    127.0.0.1:3000
#   LEPTOS_RELOAD_PORT   reload-port                  3001
#   LEPTOS_LIB_DIR       lib-package's dir            frontend
#   LEPTOS_BIN_DIR       bin-package's dir            server
#   LEPTOS_JS_MINIFY     release && js-minify         false (debug) / true (release)
#   LEPTOS_HASH_FILES    hash-files (default false)   false
#   RUSTFLAGS            debug: "<caller's RUSTFLAGS or cargo-config rustflags>
#                        --cfg erase_components" (type-erased views, much faster
#                        to compile); release: NOT set by cargo-leptos (the
#                        caller's RUSTFLAGS pass through); our release builds
#                        pass release_rustflags (below), which adds it too.
# Verified: `cargo leptos build -v` on this workspace logged exactly
#   Cargo envs: LEPTOS_OUTPUT_NAME=rowcol LEPTOS_SITE_ROOT=target/site
#   LEPTOS_SITE_PKG_DIR=pkg LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001
#   LEPTOS_LIB_DIR=frontend LEPTOS_BIN_DIR=server LEPTOS_JS_MINIFY=false
#   LEPTOS_HASH_FILES=false RUSTFLAGS=--cfg erase_components
# for `cargo build --package=server --bin=rowcol` (and the same for the wasm
# build, `cargo build --package=frontend --lib --target-dir=<target>/front
# --target=wasm32-unknown-unknown`). `cargo leptos build --release -v` logged
# the same LEPTOS_* values except LEPTOS_JS_MINIFY=true, and no RUSTFLAGS.
# Each LEPTOS_* value is overridden by the same variable in cargo-leptos's own
# environment or a .env file. leptos_config reads LEPTOS_OUTPUT_NAME with
# option_env!, so cargo tracks it; RUSTFLAGS is part of every crate's
# fingerprint. A plain `cargo test` without exactly these recompiles all the
# Leptos crates (and the next `cargo leptos build` recompiles them back). So
# the `cargo test` steps run with the same variables, derived here from the
# workspace metadata rather than copied, and only for those commands: exporting
# RUSTFLAGS globally would make cargo-leptos append erase_components a second
# time (and leak it into the release build).
leptos_test_env() {
  cargo metadata --no-deps --format-version 1 | python3 -c '
import json, os, sys
m = json.load(sys.stdin)
root = m["workspace_root"]
cfg = (m.get("metadata") or {}).get("leptos")
if isinstance(cfg, list):
    cfg = cfg[0]
if not cfg:
    sys.exit("no [[workspace.metadata.leptos]] in Cargo.toml")
dirs = {p["name"]: os.path.relpath(os.path.dirname(p["manifest_path"]), root) for p in m["packages"]}
vals = [
    ("LEPTOS_OUTPUT_NAME", cfg.get("output-name", cfg.get("name"))),
    ("LEPTOS_SITE_ROOT", cfg.get("site-root", "target/site")),
    ("LEPTOS_SITE_PKG_DIR", cfg.get("site-pkg-dir", "pkg")),
    ("LEPTOS_SITE_ADDR", cfg.get("site-addr", "127.0.0.1:3000")),
    ("LEPTOS_RELOAD_PORT", str(cfg.get("reload-port", 3001))),
    ("LEPTOS_LIB_DIR", dirs[cfg["lib-package"]]),
    ("LEPTOS_BIN_DIR", dirs[cfg["bin-package"]]),
    ("LEPTOS_JS_MINIFY", "false"),
    ("LEPTOS_HASH_FILES", str(cfg.get("hash-files", False)).lower()),
]
for k, v in vals:
    # cargo-leptos lets its own environment override the metadata.
    if k not in ("LEPTOS_LIB_DIR", "LEPTOS_BIN_DIR", "LEPTOS_JS_MINIFY"):
        v = os.environ.get(k, v)
    print(f"{k}={v}")
if cfg.get("hash-files", False):
    print("LEPTOS_HASH_FILE_NAME=" + os.environ.get("LEPTOS_HASH_FILE_NAME", cfg.get("hash-file-name", "hash.txt")))
base = os.environ.get("RUSTFLAGS", "").strip()
print("RUSTFLAGS=" + (base + " " if base else "") + "--cfg erase_components")
'
}

# The release build's RUSTFLAGS: the caller's plus `--cfg erase_components`,
# which cargo-leptos adds only to debug builds. Type-erased views cut the
# browser bundle by about 29% (issue #17 §6, measured with twiggy and
# `gzip -9` on the same wasm-release build: 799 KB -> 566 KB before
# cargo-leptos's own stripping), and the release server gets the same flag so
# the HTML it renders and the bundle that hydrates it come from one
# configuration, as in the debug build the tests run.
release_rustflags() {
  local base="${RUSTFLAGS:-}"
  base="${base#"${base%%[![:space:]]*}"}"
  echo "${base:+$base }--cfg erase_components"
}

# Fills LEPTOS_TEST_ENV for the debug site (what `cargo test`, clippy and the
# simulation harnesses run with); fails loudly when it cannot be derived.
load_leptos_test_env() {
  mapfile -t LEPTOS_TEST_ENV < <(LEPTOS_SITE_ROOT="$(site_root_for debug)" leptos_test_env)
  if [ "${#LEPTOS_TEST_ENV[@]}" -lt 10 ]; then
    echo "could not derive cargo-leptos's environment (cargo metadata + python3)" >&2
    return 1
  fi
}
