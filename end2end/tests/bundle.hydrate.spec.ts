import { test, expect, ADVISOR, openClient, settle, signIn } from './helpers';

// Issue #17 §6: each page's code is a chunk of its own (app/src/pages/lazy.rs,
// built with `cargo leptos build --split`). A person downloads the shared
// bundle and the chunks of the pages they open, never every page up front.
// JavaScript on only (the no-js project ignores *hydrate* files).

/** The names of the page chunks (split___<page>_route_view_*.wasm) fetched. */
function pageChunks(fetched: string[]): string[] {
  return fetched
    .map((p) => /split___([a-z_]+)_route_view_/.exec(p)?.[1])
    .filter((p): p is string => !!p);
}

test('a page downloads the shared bundle and its own chunk; others load when opened', async ({ page }) => {
  const fetched: string[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith('/pkg/') && path.endsWith('.wasm')) fetched.push(path.slice('/pkg/'.length));
  });

  await page.goto('/login');
  await settle(page, true);
  expect(fetched).toContain('rowcol.wasm');
  expect(pageChunks(fetched)).toEqual(['login']);

  await signIn(page, true, ADVISOR);
  expect(pageChunks(fetched)).toContain('portfolio');
  expect(pageChunks(fetched)).not.toContain('client');

  await openClient(page, true, 'Birch Lane Bakery');
  expect(pageChunks(fetched)).toContain('client');
  for (const never of ['approvals', 'audit', 'connections', 'hygiene', 'payment', 'sandbox_faults', 'waiting']) {
    expect(pageChunks(fetched), `${never}'s chunk is fetched only when its page is opened`).not.toContain(never);
  }
});
