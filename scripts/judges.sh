#!/usr/bin/env bash
# The rails' official client libraries judge the simulators (issue #9).
#
# Starts the simulators alone (`cargo run -p sandbox --example serve`, an
# in-memory world pinned to a start date), then runs every judge in judges/
# unchanged against them: judges/*_judge.py with the pinned Python libraries
# (judges/requirements.txt, in a venv under the cache dir) and
# judges/*_judge.mjs with the pinned Node ones (judges/package.json). Each
# judge gets SANDBOX_BASE (http://127.0.0.1:PORT/sandbox) and reads its
# credentials from $SANDBOX_BASE/control/credentials as an outside program
# would. A judge exits non-zero on the first thing its library cannot
# accept; this script fails if any judge does.
#
#   JUDGE=plaid scripts/judges.sh   runs only judges/plaid_judge.*
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/rowcol-judges"
mkdir -p "$cache"
venv="$cache/venv"
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s judges/requirements.txt "$stamp"; then
    echo "[judges] installing the pinned Python libraries into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r judges/requirements.txt
    cp judges/requirements.txt "$stamp"
fi
if ls judges/*_judge.mjs >/dev/null 2>&1; then
    if [ ! -d judges/node_modules ] || [ judges/package.json -nt judges/node_modules ]; then
        echo "[judges] installing the pinned Node libraries"
        (cd judges && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi)
        touch judges/node_modules
    fi
fi

# Built with the package set and features of the project's `cargo test`
# (scripts/test.sh passes its environment too): nothing else recompiles.
cargo build --quiet -p app -p clock -p sandbox -p seal -p server --features app/ssr --example serve
serve_bin="$TARGET_DIR/debug/examples/serve"
log="$(mktemp)"
"$serve_bin" 0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 300); do
    if grep -q '^listening ' "$log"; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "[judges] the simulators did not start"; exit 1; fi
    sleep 0.1
done
SANDBOX_BASE="$(sed -n 's/^listening //p' "$log" | head -1)"
[ -n "$SANDBOX_BASE" ] || { cat "$log"; echo "[judges] no listening line"; exit 1; }
export SANDBOX_BASE
echo "[judges] simulators at $SANDBOX_BASE"

failed=0
ran=0
for j in judges/${JUDGE:-*}_judge.py judges/${JUDGE:-*}_judge.mjs; do
    [ -f "$j" ] || continue
    ran=$((ran + 1))
    echo "[judges] $j"
    case "$j" in
        *.py) cmd=("$venv/bin/python" "$j") ;;
        *.mjs) cmd=(node "$j") ;;
    esac
    if ! "${cmd[@]}"; then
        echo "[judges] FAILED: $j"
        failed=1
    fi
done
[ "$ran" -gt 0 ] || { echo "[judges] no judge matched"; exit 1; }
if [ "$failed" = 1 ]; then echo "[judges] a judge failed (above)"; exit 1; fi
echo "[judges] $ran judges passed"
