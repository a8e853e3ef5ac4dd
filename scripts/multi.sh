#!/usr/bin/env bash
# `make multi`: three RowCol instances with workers on one PostgreSQL database,
# instances two and three on instance one's simulators; MULTI_WEBHOOKS signed
# `bills.paid` webhooks (default 10,000; `make test` runs 2,000), 30%
# duplicates, round-robin, while approvals run on all three. Took 214 s for
# 10,000 on a 2-core machine.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd)
"$ROOT/scripts/ensure-postgres.sh"
# The environment cargo-leptos gives the server build (derived in
# scripts/lib.sh); a different one only costs a rebuild.
load_leptos_test_env
export "${LEPTOS_TEST_ENV[@]}"
MULTI_WEBHOOKS="${MULTI_WEBHOOKS:-10000}" \
  cargo test -p app -p clock -p sandbox -p seal -p server --features app/ssr --test api multi:: -- --nocapture
