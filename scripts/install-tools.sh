#!/usr/bin/env bash
# Install the build and test tools RowCol needs, at pinned versions.
#
# Idempotent: every step first checks whether the tool is already there at the
# right version and does nothing if so, so a warm machine gets through this in
# about a second. A brand-new CI machine (rustup/cargo, node/npm, root, no
# wasm target, no cargo-leptos, no chromium) takes ~20 minutes, nearly all of
# it compiling cargo-leptos (~16 min) and wasm-bindgen-cli (~3 min).
#
# Pins and why (details in /work/shared/toolchain.md):
#   cargo-leptos 0.3.10   0.3.11 with --locked needs rustc 1.96; we have 1.95.
#   wasm-bindgen-cli 0.2.130
#                         must equal the `wasm-bindgen = "=0.2.130"` pin in
#                         Cargo.toml. Installed WITHOUT --locked: its lockfile
#                         pins a webpki-roots the registry lacks. cargo-leptos
#                         uses the one on PATH (its own download fails offline).
#   binaryen 132 (npm)    wasm-opt for release builds. Debian's binaryen 108
#                         produces a wasm that never hydrates, so release builds
#                         put end2end/node_modules/.bin first on PATH.
#   @playwright/test      from end2end/package-lock.json; it drives Debian's
#                         /usr/bin/chromium (`npx playwright install` fails here).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
# Tools installed by `cargo install` must win over anything else on PATH.
export PATH="$CARGO_BIN:$PATH"

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_MAJOR=132

# Version strings are captured first and then matched, rather than piped into
# `grep -q`, so that pipefail + SIGPIPE can never turn a match into a miss.
has_word() { [[ " $1 " =~ [^0-9.]$2[^0-9.] ]]; }

did=()   # what this run changed, for the summary at the end
say() { printf '[install-tools] %s\n' "$*"; }
die() { printf '[install-tools] ERROR: %s\n' "$*" >&2; exit 1; }
# Be loud about which command failed (set -e alone exits silently).
trap 'printf "[install-tools] FAILED (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

command -v cargo >/dev/null || die "cargo not found (need rustup's toolchain on PATH)"
command -v npm >/dev/null || die "npm not found (need Node.js 20 + npm)"

# --- wasm32 target: the frontend crate is compiled to wasm by cargo-leptos ----
targets="$(rustup target list --installed)"
if grep -qx wasm32-unknown-unknown <<<"$targets"; then
  say "ok: wasm32-unknown-unknown target"
else
  say "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
  did+=("rustup target add wasm32-unknown-unknown")
fi

# --- cargo-leptos -------------------------------------------------------------
v="$(cargo leptos --version 2>/dev/null || true)"
if has_word "$v" "$CARGO_LEPTOS_VERSION"; then
  say "ok: $v"
else
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 16 minutes on 2 cores)"
  cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION"
  v="$(cargo leptos --version 2>/dev/null || true)"
  has_word "$v" "$CARGO_LEPTOS_VERSION" \
    || die "cargo leptos --version does not report $CARGO_LEPTOS_VERSION after install"
  did+=("cargo install cargo-leptos $CARGO_LEPTOS_VERSION")
fi

# --- wasm-bindgen CLI ---------------------------------------------------------
v="$(wasm-bindgen --version 2>/dev/null || true)"
if has_word "$v" "$WASM_BINDGEN_VERSION"; then
  say "ok: $v"
else
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes; deliberately without --locked)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  v="$(wasm-bindgen --version 2>/dev/null || true)"
  has_word "$v" "$WASM_BINDGEN_VERSION" \
    || die "wasm-bindgen on PATH ($(command -v wasm-bindgen)) is not $WASM_BINDGEN_VERSION after install"
  did+=("cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION")
fi

# --- npm: Playwright test runner + binaryen (wasm-opt) ------------------------
# `npm ci` wipes and reinstalls node_modules (~3 s); skip it when the installed
# tree was made from the very same package-lock.json (stamp below).
E2E="$ROOT/end2end"
STAMP="$E2E/node_modules/.rowcol-lock.sha256"
lock_sum="$(sha256sum "$E2E/package-lock.json" | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$lock_sum" ] \
   && [ -x "$E2E/node_modules/.bin/playwright" ] && [ -x "$E2E/node_modules/.bin/wasm-opt" ]; then
  say "ok: end2end/node_modules matches package-lock.json"
else
  say "npm ci in end2end"
  (cd "$E2E" && npm ci --no-audit --no-fund)
  echo "$lock_sum" > "$STAMP"
  did+=("npm ci (end2end)")
fi
v="$("$E2E/node_modules/.bin/wasm-opt" --version)"
[[ "$v" == *"version $BINARYEN_MAJOR"* ]] \
  || die "end2end/node_modules/.bin/wasm-opt is not binaryen $BINARYEN_MAJOR"
say "ok: playwright $("$E2E/node_modules/.bin/playwright" --version | awk '{print $2}'), wasm-opt $BINARYEN_MAJOR (npm)"
other_opt="$(command -v wasm-opt || true)"
if [ -n "$other_opt" ]; then
  say "note: $other_opt is on PATH; release builds must (and scripts/test.sh does) put end2end/node_modules/.bin first"
fi

# --- Chromium for Playwright --------------------------------------------------
if [ -x /usr/bin/chromium ]; then
  say "ok: /usr/bin/chromium"
else
  [ "$(id -u)" -eq 0 ] || die "/usr/bin/chromium is missing; as root run: apt-get update && apt-get install -y chromium"
  say "installing Debian chromium (about 40 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y chromium
  [ -x /usr/bin/chromium ] || die "apt-get installed chromium but /usr/bin/chromium is missing"
  did+=("apt-get install chromium")
fi

if [ ${#did[@]} -eq 0 ]; then
  say "all tools present; nothing to do"
else
  say "done: ${did[*]}"
fi
