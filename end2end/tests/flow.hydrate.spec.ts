import {
  test,
  expect,
  ADVISOR,
  approveSmallestBill,
  pressApprove,
  billBoxes,
  openClient,
  settle,
  signIn,
  smallestBillIndex,
} from './helpers';

// JavaScript on only (the no-js project ignores *hydrate* files): the live
// guardrail verdict needs the hydrated app. One long test because each step
// depends on the previous one (same database, sandbox clock moves forward).

const CUSTODY = ['approved', 'released', 'paid', 'recorded', 'verified'];

test('hydrates, guards, approves, advances the clock and verifies custody', async ({ page }) => {
  test.setTimeout(180_000);

  await test.step('the wasm bundle hydrates the page', async () => {
    await page.goto('/login');
    await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1, { timeout: 30_000 });
  });

  await test.step('guardrail verdict updates live before submitting', async () => {
    // Birch Lane Bakery is the demo world's tight client: its largest bill
    // breaks the buffer and its smallest fits, on any start date.
    await signIn(page, true, ADVISOR);
    await openClient(page, true, 'Birch Lane Bakery');
    const boxes = billBoxes(page);
    const n = await boxes.count();
    expect(n, 'Birch Lane Bakery needs at least two bills').toBeGreaterThanOrEqual(2);
    const verdict = page.getByTestId('guardrail-verdict');
    const smallest = await smallestBillIndex(page);

    for (let i = 0; i < n; i++) await boxes.nth(i).check();
    await expect(verdict).toContainText('FAIL');
    await expect(page.getByTestId('cash-after')).not.toBeEmpty();
    await expect(page.getByTestId('required-buffer')).not.toBeEmpty();

    for (let i = 0; i < n; i++) if (i !== smallest) await boxes.nth(i).uncheck();
    await expect(verdict).toContainText('PASS');
    await expect(verdict).not.toContainText('FAIL');

    await pressApprove(page);
    await expect(page.getByTestId('approve-result')).toContainText('Approved');
  });

  let paymentUrl = '';
  await test.step('approve at Alder Creek Dental and advance the sandbox clock', async () => {
    await page.getByRole('link', { name: 'Portfolio', exact: true }).first().click();
    await expect(page.getByTestId('portfolio')).toBeVisible();
    await openClient(page, true, 'Alder Creek Dental');
    await approveSmallestBill(page);
    await expect(page.getByTestId('approve-result')).toContainText('Approved');

    const today = page.getByTestId('sandbox-today');
    await expect(today).toHaveText(/\d{4}-\d{2}-\d{2}/);
    const before = (await today.textContent())!.trim();
    await page.getByTestId('advance-days').fill('40');
    await page.getByTestId('advance-clock').click();
    await expect(today).not.toHaveText(before);
    await expect(today).toHaveText(/\d{4}-\d{2}-\d{2}/);
    await settle(page, true);

    // The advance may have reloaded the page (form post): go through the
    // first payment row's link either way.
    const link = page.getByTestId('payment-row').first().getByRole('link').first();
    await expect(link).toHaveAttribute('href', /\/payments\//);
    await link.click();
    await expect(page).toHaveURL(/\/payments\/[^/?#]+/);
    paymentUrl = page.url();
  });

  await test.step('the payment reaches "verified" with the full custody chain', async () => {
    const state = page.getByTestId('payment-state');
    // Settlement runs in the background: reload once a second, up to 30 s.
    await expect(async () => {
      await page.reload();
      await expect(state).toHaveText(/^\s*verified\s*$/i, { timeout: 1_000 });
    }).toPass({ timeout: 30_000, intervals: [1_000] });
    expect(page.url()).toBe(paymentUrl);

    const steps = page.getByTestId('custody-step');
    await expect(steps).toHaveCount(CUSTODY.length);
    for (let i = 0; i < CUSTODY.length; i++) {
      await expect(steps.nth(i)).toHaveAttribute('data-state', CUSTODY[i]);
    }
  });

  await test.step('the audit log records it and its hash chain verifies', async () => {
    await page.goto('/audit');
    const rows = page.getByTestId('audit-row');
    for (const action of ['payment.approved', 'payment.released', 'payment.verified']) {
      await expect(rows.filter({ hasText: action }).first()).toBeVisible();
    }
    const chain = page.getByTestId('chain-status');
    // \b keeps "unverified" from passing; "not verified" is excluded outright.
    await expect(chain).toContainText(/\bverified\b/i);
    await expect(chain).not.toContainText(/not\s+verified/i);
  });
});
