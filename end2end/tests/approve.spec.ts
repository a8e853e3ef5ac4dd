import { test, expect, ADVISOR, VIEWER, approveSmallestBill, openClient, settle, signIn } from './helpers';

// Runs in both projects (JavaScript on and off). All tests share one database
// and run one at a time, so each run approves the then-smallest open bill of
// Alder Creek Dental, the demo world's rich client: every one of its bills
// fits its buffer alone, on any start date (the world's own unit tests check
// that), and it has enough for the hydrated run, the no-JS run and
// flow.hydrate.spec.ts.

const CLIENT = 'Alder Creek Dental';

test('advisor approves a bill and a payment appears', async ({ page, javaScriptEnabled }) => {
  await signIn(page, javaScriptEnabled, ADVISOR);
  await openClient(page, javaScriptEnabled, CLIENT);

  await approveSmallestBill(page);
  await expect(page.getByTestId('approve-result')).toContainText('Approved');
  // approve-error may always be rendered; it must not say anything.
  await expect(page.getByTestId('approve-error').filter({ hasText: /\S/ })).toHaveCount(0);

  // Load the client page afresh so the check reads what the server stored, with
  // or without JavaScript. Earlier runs may have left payments in later states
  // (flow.hydrate.spec.ts advances the clock), so ask for at least one payment
  // that is approved or released: the one just made.
  await page.reload();
  await settle(page, javaScriptEnabled);
  const fresh = page
    .getByTestId('payment-row')
    .filter({ has: page.getByTestId('payment-state').filter({ hasText: /^\s*(approved|released)\s*$/i }) });
  await expect(fresh.first()).toBeVisible();
  await expect(fresh.first().getByRole('link')).toHaveAttribute('href', /\/payments\//);
});

test('viewer sees no approval controls', async ({ page, javaScriptEnabled }) => {
  await signIn(page, javaScriptEnabled, VIEWER);
  await openClient(page, javaScriptEnabled, CLIENT);

  // The bills and the numbers, but nothing to tick and no button: the
  // server refuses a viewer's approval anyway (403, integration tests).
  await expect(page.getByTestId('bill-row').first()).toBeVisible();
  await expect(page.locator('[data-testid=bill-row] input[type=checkbox]')).toHaveCount(0);
  await expect(page.getByTestId('approve')).toHaveCount(0);
  // Nor is the sandbox clock theirs to move: they see the date, not the control.
  await expect(page.getByTestId('sandbox-today')).toBeVisible();
  await expect(page.getByTestId('advance-clock')).toHaveCount(0);
});
