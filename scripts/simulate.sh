#!/usr/bin/env bash
# The deterministic simulation (issue #7; server/tests/simulate/):
#
#   make simulate SEEDS=N     seeds 1..N on SQLite (default 20)
#   make simulate SEED=n      replay one seed (add SIM_TRACE=1 to print its trace)
#   DATABASE_URL=postgres://… make simulate   the same on PostgreSQL (a fresh
#                             database per seed is created through that server)
#   SIM_STEPS=K               steps per seed (default 30)
#
# Prints the per-fault table, any failing seed with its violations and its
# replay command, and last exactly one line: `seeds: N, violations: V`.
set -uo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export SIM_SEEDS="${SIM_SEEDS:-${SEEDS:-20}}"
if [ -n "${SEED:-}" ]; then export SIM_SEED="$SEED"; fi
case "${DATABASE_URL:-}" in
  postgres://*|postgresql://*)
    export SIM_ENGINE=postgres
    export ROWCOL_TEST_PG_URL="$DATABASE_URL" ;;
  *) export SIM_ENGINE=sqlite ;;
esac

# The Leptos build variables cargo-leptos builds the server with (derived in
# scripts/lib.sh; any other set recompiles every Leptos crate).
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
load_leptos_test_env
env "${LEPTOS_TEST_ENV[@]}" \
  cargo test -q -p app -p clock -p sandbox -p seal -p server --features app/ssr --test simulate -- --exact simulate_seeds --ignored --nocapture \
  2>&1 | tee "$out" | grep -v '^seeds: '
summary="$(grep '^seeds: ' "$out" | tail -1)"
if [ -z "$summary" ]; then
  n=1; [ -z "${SIM_SEED:-}" ] && n="$SIM_SEEDS"
  summary="seeds: $n, violations: unknown (the run did not finish: see above)"
fi
echo "$summary"
case "$summary" in *"violations: 0") exit 0 ;; *) exit 1 ;; esac
