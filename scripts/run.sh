#!/usr/bin/env bash
# `make run`: build the debug site + server and run the server in the
# foreground, from the workspace root (it resolves target/site from there).
# The environment passes straight through, so ROWCOL_ADDR, DATABASE_URL,
# ROWCOL_DEMO_PASSWORD (and RUST_LOG, LEPTOS_*...) work as usual.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH, TARGET_DIR, SITE_ROOT

"$ROOT/scripts/install-tools.sh"
cargo leptos build
mkdir -p data   # default home of the SQLite database (git-ignored)
export LEPTOS_SITE_ROOT="$SITE_ROOT"
exec "$TARGET_DIR/debug/rowcol" serve "$@"
