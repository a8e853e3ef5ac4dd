import { test, expect, ADVISOR, VIEWER, approveSmallestBill, openClient, settle, signIn } from './helpers';

// Runs in both projects (JavaScript on and off), after approve.spec.ts, on
// the rich client (see there): Ramp refuses the next release, the payment
// fails, and the advisor retries it from the hygiene tray.

const CLIENT = 'Alder Creek Dental';

test('a failed release is retried from the hygiene tray', async ({ page, javaScriptEnabled }) => {
  // Ramp answers the next bill create with 400: the release cannot succeed.
  const faults = await page.request.post('/sandbox/control/faults', {
    data: { ramp_create_fail_next: [400] },
  });
  expect(faults.ok()).toBeTruthy();

  await signIn(page, javaScriptEnabled, ADVISOR);
  await openClient(page, javaScriptEnabled, CLIENT);
  await approveSmallestBill(page);
  await expect(page.getByTestId('approve-result')).toContainText('Approved');

  // The worker releases at once, Ramp refuses, the payment fails.
  const item = page
    .getByTestId('hygiene-row')
    .filter({ hasText: 'release_failed' })
    .filter({ has: page.getByTestId('retry') });
  await expect(async () => {
    await page.goto('/hygiene');
    await settle(page, javaScriptEnabled);
    await expect(item.first()).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  const before = await item.count();

  // A viewer sees the same items and none of the controls the server would
  // refuse them.
  await page.context().clearCookies();
  await signIn(page, javaScriptEnabled, VIEWER);
  await page.goto('/hygiene');
  await settle(page, javaScriptEnabled);
  await expect(page.getByTestId('hygiene-row').filter({ hasText: 'release_failed' }).first()).toBeVisible();
  for (const control of ['retry', 'dismiss', 'tray-stop', 'reconnect']) {
    await expect(page.getByTestId(control)).toHaveCount(0);
  }
  await page.context().clearCookies();
  await signIn(page, javaScriptEnabled, ADVISOR);
  await page.goto('/hygiene');
  await settle(page, javaScriptEnabled);

  await item.first().getByTestId('retry').click();
  if (javaScriptEnabled) {
    await expect(page.getByTestId('hygiene-outcome')).toContainText('Approved 1 bill');
  }
  await page.goto('/hygiene');
  await settle(page, javaScriptEnabled);
  await expect(item).toHaveCount(before - 1);
});

test('an amount mismatch is re-checked, then resolved with a note, and stays under Resolved', async ({
  page,
  javaScriptEnabled,
  baseURL,
}) => {
  // QuickBooks will record the next payment Ramp makes 1.00 off. The
  // payments the specs before this one released (the retry above among
  // them) are still to be paid: no new approval is needed, and Alder Creek
  // keeps its bills for the specs after this one.
  const faults = await page.request.post('/sandbox/control/faults', {
    data: { qbo_amount_mismatch_next: 1 },
  });
  expect(faults.ok()).toBeTruthy();
  await signIn(page, javaScriptEnabled, ADVISOR);

  // Days pass, a few at a time, until Ramp pays and RowCol finds the mismatch.
  const item = page.getByTestId('hygiene-row').filter({ hasText: 'amount_mismatch' });
  await expect(async () => {
    const advance = await page.request.post('/api/sandbox/advance', {
      form: { days: '2' },
      headers: { Origin: baseURL as string },
    });
    expect(advance.status(), await advance.text()).toBe(200);
    await page.goto('/hygiene?reason=amount_mismatch');
    await settle(page, javaScriptEnabled);
    await expect(item.first()).toBeVisible({ timeout: 1_000 });
  }).toPass({ timeout: 60_000 });
  await expect(item.first()).toContainText('QuickBooks recorded a different amount');
  const before = await item.count();

  // Re-checked: QuickBooks is still wrong, so it stays open.
  await item.first().getByTestId('recheck').click();
  if (javaScriptEnabled) {
    await expect(page.getByTestId('hygiene-outcome')).toContainText('Re-checking now');
  }
  await page.goto('/hygiene?reason=amount_mismatch');
  await settle(page, javaScriptEnabled);
  await expect(item).toHaveCount(before);

  // Resolved with a note: it leaves the open items and shows under Resolved.
  const note = `Vendor confirmed the 1.00 is a QBO typo (${javaScriptEnabled ? 'js' : 'no-js'})`;
  await item.first().getByTestId('resolve-note').fill(note);
  await item.first().getByTestId('resolve').click();
  if (javaScriptEnabled) {
    await expect(page.getByTestId('hygiene-outcome')).toContainText('Resolved');
  }
  await page.goto('/hygiene?reason=amount_mismatch');
  await settle(page, javaScriptEnabled);
  await expect(item).toHaveCount(before - 1);
  await page.goto('/hygiene?reason=amount_mismatch&state=resolved');
  await settle(page, javaScriptEnabled);
  const closed = page.getByTestId('hygiene-row').filter({ hasText: note });
  await expect(closed).toHaveCount(1);
  await expect(closed.getByTestId('closed-line')).toContainText(`Resolved by ${ADVISOR}`);
});
