#!/usr/bin/env bash
# `make lint`: rustfmt check + clippy with warnings denied.
#
# Clippy runs per side with the features that side is really built with: a
# plain workspace-wide `cargo clippy` would unify app's `ssr` (from server) and
# `hydrate` (from frontend) features into one build, which Leptos does not
# support. The server side is linted as `cargo test` builds it -- the same
# packages, features and Leptos environment (scripts/lib.sh) -- so all its
# targets are checked in one pass whose dependency checks the planted-bugs
# pass reuses (before, `-p app --features ssr` alone resolved other features
# and checked the whole Leptos stack a second time). The wasm side is checked
# for the wasm target.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd), PATH, LEPTOS_TEST_ENV
load_leptos_test_env

rustup target list --installed | grep -qx wasm32-unknown-unknown \
  || { echo "wasm32-unknown-unknown missing: run scripts/install-tools.sh" >&2; exit 1; }

set -x
cargo fmt --all -- --check
env "${LEPTOS_TEST_ENV[@]}" cargo clippy -p app -p clock -p sandbox -p seal -p server --features app/ssr --all-targets -- -D warnings
env "${LEPTOS_TEST_ENV[@]}" cargo clippy -p app -p clock -p sandbox -p seal -p server --features app/ssr,server/planted-bugs --all-targets -- -D warnings
cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
