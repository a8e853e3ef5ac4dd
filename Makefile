# RowCol developer entry points. The logic lives in scripts/ (readable, and
# shared with CI: .ci/run -> make test). Every target installs missing pinned
# tools first (scripts/install-tools.sh; a no-op when all are present).
#
#   make run            build (debug) and run the server on $ROWCOL_ADDR
#                       (env passes through: ROWCOL_ADDR, DATABASE_URL,
#                       ROWCOL_DEMO_PASSWORD, RUST_LOG, ...)
#   make check          the edit-compile-test loop: fmt, clippy, unit tests and
#                       the integration tests on SQLite (scripts/check.sh; a
#                       few minutes warm). Run it while you work.
#   make test           the full suite CI runs (scripts/test.sh), before you push
#   make build          cargo leptos build (debug); make build-release for release
#   make e2e            debug build + Playwright (both projects); E2E_PROFILE=release
#                       for the release build
#   make simulate       the deterministic simulation: SEEDS=N seeds on SQLite
#                       (DATABASE_URL=postgres://... for PostgreSQL), SEED=n
#                       replays one (scripts/simulate.sh)
#   make planted        the simulation must catch each deliberately planted bug
#                       (a test build; scripts/planted.sh)
#   make crash          the crash-recovery proof: the binary SIGKILLed KILLS=N times
#                       per engine (default 10; the documented run is KILLS=50)
#                       under traffic, restarted, invariants checked; SEED=n
#                       replays, ENGINE=sqlite|postgres|both (scripts/crash.sh)
#   make lint           rustfmt check + clippy -D warnings (per package/feature)

SHELL := /usr/bin/env bash
E2E_PROFILE ?= debug

.PHONY: run check test build build-release e2e lint tools multi simulate planted crash

tools:
	scripts/install-tools.sh

run:
	scripts/run.sh

check:
	scripts/check.sh

test:
	scripts/test.sh

build:
	scripts/build.sh debug

build-release:
	scripts/build.sh release

e2e:
	scripts/build.sh $(E2E_PROFILE)
	scripts/e2e.sh $(E2E_PROFILE)

lint: tools
	scripts/lint.sh

# Three instances on one PostgreSQL at full size (make test runs 2,000
# webhooks): MULTI_WEBHOOKS=N to change it.
multi:
	scripts/multi.sh

simulate:
	SEEDS="$(SEEDS)" SEED="$(SEED)" scripts/simulate.sh

# The simulation against a test build with planted bugs: each must be caught.
planted:
	scripts/planted.sh

crash:
	KILLS="$(KILLS)" SEED="$(SEED)" ENGINE="$(ENGINE)" scripts/crash.sh
