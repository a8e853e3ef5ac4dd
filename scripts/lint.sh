#!/usr/bin/env bash
# `make lint`: rustfmt check + clippy with warnings denied.
#
# Clippy runs per package with the features that package is really built with:
# a plain workspace-wide `cargo clippy` would unify app's `ssr` (from server)
# and `hydrate` (from frontend) features into one build, which Leptos does not
# support. The wasm side is checked for the wasm target. The sandbox crate is
# linted together with server, so features unify as in the server build.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH

rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || { echo "wasm32-unknown-unknown missing: run scripts/install-tools.sh" >&2; exit 1; }

set -x
cargo fmt --all -- --check
cargo clippy -p app --features ssr --all-targets -- -D warnings
cargo clippy -p sandbox -p seal -p server --all-targets -- -D warnings
cargo clippy -p server --features planted-bugs --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
