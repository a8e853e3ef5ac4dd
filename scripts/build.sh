#!/usr/bin/env bash
# `make build` / `make build-release`: cargo leptos build, debug or release.
#   scripts/build.sh [debug|release]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH

"$ROOT/scripts/install-tools.sh"
case "${1:-debug}" in
  # Each profile has its own site (scripts/lib.sh: site_root_for).
  debug) LEPTOS_SITE_ROOT="$(site_root_for debug)" cargo leptos build --split ;;
  release)
    # wasm-opt must be npm's binaryen 132; Debian's binaryen 108 builds a wasm
    # that never hydrates. cargo-leptos runs the first wasm-opt on PATH.
    LEPTOS_SITE_ROOT="$(site_root_for release)" RUSTFLAGS="$(release_rustflags)" \
      PATH="$ROOT/end2end/node_modules/.bin:$PATH" cargo leptos build --release --split ;;
  *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac
