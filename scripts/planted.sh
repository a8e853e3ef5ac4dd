#!/usr/bin/env bash
# The simulation against deliberately planted bugs (issue #7):
#
#   make planted        a test build with the `planted-bugs` feature; each bug
#                       (ROWCOL_PLANTED_BUG=no_remote_id_lookup |
#                       no_state_guard | no_lease_fencing |
#                       no_connection_check) is switched on in
#                       turn and seeds 1, 2, … run until one reports a
#                       violation. Fails if a bug survives PLANTED_BUDGET seeds
#                       (server/tests/simulate/). Prints, per bug, the seed
#                       that caught it and what it saw.
#
# The feature changes `app` and `server`, so this is a second build of those
# two crates (about 3 minutes on 2 cores); the dependencies are shared.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${DATABASE_URL:-}" in
  postgres://*|postgresql://*)
    export SIM_ENGINE=postgres
    export ROWCOL_TEST_PG_URL="$DATABASE_URL" ;;
  *) export SIM_ENGINE=sqlite ;;
esac

load_leptos_test_env
env "${LEPTOS_TEST_ENV[@]}" \
  cargo test -q -p app -p clock -p sandbox -p seal -p server --features app/ssr,server/planted-bugs --test simulate -- \
    --exact planted_bugs_are_caught --ignored --nocapture --test-threads=1
