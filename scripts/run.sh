#!/usr/bin/env bash
# `make run`: build the debug site + server and run the server in the
# foreground, from the workspace root (it resolves target/site-debug from
# there: the debug build has its own site, see scripts/lib.sh).
# The environment passes straight through, so ROWCOL_ADDR, DATABASE_URL,
# ROWCOL_DEMO_PASSWORD (and RUST_LOG, LEPTOS_*...) work as usual.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH, TARGET_DIR, site_root_for

"$ROOT/scripts/install-tools.sh"
export LEPTOS_SITE_ROOT="$(site_root_for debug)"
cargo leptos build --split
mkdir -p data   # default home of the SQLite database (git-ignored)
exec "$TARGET_DIR/debug/rowcol" serve "$@"
