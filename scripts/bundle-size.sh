#!/usr/bin/env bash
# What a person downloads for the console (issue #17 §6), from a release site
# built with `cargo leptos build --release --split` (scripts/build.sh):
# the bundle every page loads first (pkg/rowcol.wasm) and, per page, that
# bundle plus the page's own chunks (pkg/__wasm_split_manifest.json names
# them). Sizes are bytes of gzip -9. Fails when the site is not split or a
# size is over its limit, so pages added later cannot quietly grow them.
#
#   scripts/bundle-size.sh [site-root]        (default: target/site)
#
# Environment:
#   ROWCOL_BUNDLE_LIMIT_GZ  the first bundle's limit (default 306000:
#                           raised from 300000 when issue #18 added three
#                           routes, the People link and the sign-in's code)
#   ROWCOL_PAGE_LIMIT_GZ    each page's total limit (default 505000: a
#                           ratchet at the heaviest page, the client page,
#                           raised from 500000 when issue #18's notifications
#                           and order notes took it to 500880)
# What makes a bundle large: twiggy (README, "The bundle").
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ROOT (cwd)
SITE="${1:-$ROOT/target/site}"
exec python3 - "$SITE/pkg" "${ROWCOL_BUNDLE_LIMIT_GZ:-306000}" "${ROWCOL_PAGE_LIMIT_GZ:-505000}" <<'PY'
import gzip, json, os, sys

pkg, first_limit, page_limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def gz(name):
    with open(os.path.join(pkg, name), "rb") as f:
        return len(gzip.compress(f.read(), 9))

manifest = os.path.join(pkg, "__wasm_split_manifest.json")
if not os.path.exists(manifest):
    sys.exit(f"[bundle] {manifest} missing: the release site must be built with --split")
with open(manifest) as f:
    routes = json.load(f)

first = gz("rowcol.wasm")
print(f"[bundle] loaded first by every page: rowcol.wasm {first} bytes gzip -9 "
      f"(+ rowcol.js {gz('rowcol.js')}); limit {first_limit}")
failed = first > first_limit
pages = {k: v for k, v in routes.items() if "_route_view_" in k}
if not pages:
    sys.exit("[bundle] the manifest names no page chunks: are the routes lazy (app/src/pages/lazy.rs)?")
own_of = {key: sum(gz(c + ".wasm") for c in chunks) for key, chunks in pages.items()}
for key in sorted(pages, key=lambda k: -own_of[k]):
    own = own_of[key]
    page = key.lstrip("_").split("_route_view_")[0]
    total = first + own
    flag = "" if total <= page_limit else f"  OVER the page limit {page_limit}"
    failed |= total > page_limit
    print(f"[bundle]   {page:14} its chunks {own:7}  with the first bundle {total:7}{flag}")
if failed:
    sys.exit("[bundle] over a limit: find what grew with twiggy (README, 'The bundle')")
PY
