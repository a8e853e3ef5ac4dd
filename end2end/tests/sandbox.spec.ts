import { test, expect, settle, signIn } from './helpers';

// Issue #9: the console's Sandbox page (/simulator). A firm admin sets a
// fault, sees it listed as set, and clears it. Runs in both projects
// (JavaScript on and off: each form is a plain post). Workers are serial,
// and the fault is cleared again after each test (through the simulators'
// own control API) so a failure here leaves no Ramp 429 for other specs.

const ADMIN = 'admin@northwind.test';

test.afterEach(async ({ request }) => {
  const faults = await (await request.get('/sandbox/control/faults')).json();
  faults.ramp_create_fail_next = [];
  const res = await request.post('/sandbox/control/faults', { data: faults });
  expect(res.ok()).toBeTruthy();
});

test('an admin sets Ramp 429 next on the Sandbox page and clears it', async ({
  page,
  javaScriptEnabled,
}) => {
  await signIn(page, javaScriptEnabled, ADMIN);
  await page.goto('/simulator');
  await settle(page, javaScriptEnabled);
  const row = page.getByTestId('fault-ramp_create_fail_next');
  await expect(row).toHaveAttribute('data-state', 'off');
  await expect(page.getByTestId('fault-value-ramp_create_fail_next')).toHaveText('off');

  await row.locator('input[name=value]').fill('429');
  await page.getByTestId('fault-set-ramp_create_fail_next').click();
  await expect(row).toHaveAttribute('data-state', 'set');
  await expect(page.getByTestId('fault-value-ramp_create_fail_next')).toHaveText('429');
  // The simulators hold it, not just the page.
  const held = await (await page.request.get('/sandbox/control/faults')).json();
  expect(held.ramp_create_fail_next).toEqual([429]);

  await page.getByTestId('fault-clear-ramp_create_fail_next').click();
  await expect(row).toHaveAttribute('data-state', 'off');
  await expect(page.getByTestId('fault-value-ramp_create_fail_next')).toHaveText('off');
  const cleared = await (await page.request.get('/sandbox/control/faults')).json();
  expect(cleared.ramp_create_fail_next).toEqual([]);
});

test.describe('refusals', () => {
  // The browser logs the server function's 400.
  test.use({ allowConsoleErrors: [/status of 400/] });

  test('bad input is refused with the reason', async ({ page, javaScriptEnabled }) => {
    test.skip(!javaScriptEnabled, 'the error line is shown by the hydrated page');
    await signIn(page, javaScriptEnabled, ADMIN);
    await page.goto('/simulator');
    await settle(page, javaScriptEnabled);
    const row = page.getByTestId('fault-ramp_create_fail_next');
    await row.locator('input[name=value]').fill('200');
    await page.getByTestId('fault-set-ramp_create_fail_next').click();
    await expect(page.getByTestId('fault-error')).toContainText('400–599');
    await page.goto('/simulator');
    await settle(page, javaScriptEnabled);
    await expect(page.getByTestId('fault-ramp_create_fail_next')).toHaveAttribute('data-state', 'off');
  });
});
