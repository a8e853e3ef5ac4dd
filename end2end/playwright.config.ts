import { defineConfig } from '@playwright/test';

// Browser tests run against a server that scripts/e2e.sh has already started
// and waited for (GET /readyz == 200); this config never starts one itself.
//
// The browser is Debian's /usr/bin/chromium: `npx playwright install` cannot
// download a browser on our machines. The flags are the ones known to work
// headless as root in a sandbox with a closed network (without the
// background-networking ones Chromium keeps dialling Google and gets refused).
const baseURL = process.env.BASE_URL ?? 'http://127.0.0.1:3900';

export default defineConfig({
  testDir: './tests',
  // The tests share one database (approvals, the sandbox clock, the audit
  // chain), so they run one at a time, in file order.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  timeout: 90_000,
  expect: { timeout: 10_000 },
  outputDir: 'test-results',
  use: {
    baseURL,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    actionTimeout: 15_000,
    navigationTimeout: 30_000,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [
    // JavaScript on: server-rendered pages hydrate with the wasm bundle.
    // Runs every spec, including the *.hydrate.spec.ts ones.
    {
      name: 'hydrated',
      testMatch: /.*\.spec\.ts/,
      use: { javaScriptEnabled: true },
    },
    // JavaScript off: every flow must also work as plain HTML forms that post
    // and reload. Specs that assert hydration or live (client-side) updates
    // are skipped here.
    {
      name: 'no-js',
      testMatch: /.*\.spec\.ts/,
      testIgnore: /.*hydrate.*/,
      use: { javaScriptEnabled: false },
    },
  ],
});
