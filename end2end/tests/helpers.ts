import { test as base, expect, type Page } from '@playwright/test';

/**
 * Every spec imports `test` from here: it fails a test on any uncaught page
 * error or console error (a hydration panic, a bundle from another build,
 * a failed request), except those the test declares it expects with
 * `test.use({ allowConsoleErrors: [/.../] })`.
 */
export const test = base.extend<{ allowConsoleErrors: RegExp[]; consoleGuard: void }>({
  allowConsoleErrors: [[], { option: true }],
  consoleGuard: [
    async ({ page, allowConsoleErrors }, use) => {
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`uncaught page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() !== 'error') return;
        const text = m.text();
        if (allowConsoleErrors.some((r) => r.test(text))) return;
        problems.push(`console error: ${text} (${m.location().url})`);
      });
      await use();
      expect(problems, 'the page logged errors').toEqual([]);
    },
    { auto: true },
  ],
});
export { expect };

// Demo accounts seeded by the server; the password comes from the environment
// that scripts/e2e.sh also passes to the server (ROWCOL_DEMO_PASSWORD).
export const ADVISOR = 'advisor@northwind.test';
export const VIEWER = 'viewer@northwind.test';
export const DEMO_PASSWORD = process.env.ROWCOL_DEMO_PASSWORD ?? 'demo-password-e2e';

/**
 * With JavaScript on, wait until the wasm bundle has hydrated the page (the app
 * sets body[data-hydrated="true"] from an Effect). Interacting earlier races
 * hydration: a checkbox ticked before hydration may be reset by it, and a
 * click may fall through to a native form post. With JavaScript off there is
 * nothing to wait for.
 */
export async function settle(page: Page, javaScriptEnabled: boolean): Promise<void> {
  if (javaScriptEnabled) {
    await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1, { timeout: 30_000 });
  }
}

/** Fill and submit the /login form (does not check the outcome). */
export async function submitLogin(
  page: Page,
  javaScriptEnabled: boolean,
  email: string,
  password: string,
): Promise<void> {
  await page.goto('/login');
  await settle(page, javaScriptEnabled);
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(password);
  await page.locator('button[type=submit]').click();
}

/** Sign in and wait for the portfolio, which is where a sign-in lands. */
export async function signIn(page: Page, javaScriptEnabled: boolean, email: string): Promise<void> {
  await submitLogin(page, javaScriptEnabled, email, DEMO_PASSWORD);
  await expect(page.getByTestId('portfolio')).toBeVisible();
  await settle(page, javaScriptEnabled);
}

/** From the portfolio, follow the link with the client's name to /clients/<id>. */
export async function openClient(page: Page, javaScriptEnabled: boolean, name: string): Promise<void> {
  await page.getByTestId('portfolio').getByRole('link', { name, exact: true }).click();
  await expect(page).toHaveURL(/\/clients\/[^/?#]+/);
  await expect(page.getByTestId('bill-row').first()).toBeVisible();
  await settle(page, javaScriptEnabled);
}

/** Bill checkboxes on a client page. */
export function billBoxes(page: Page) {
  return page.locator('[data-testid=bill-row] input[type=checkbox]');
}

/** The index of the smallest open bill on a client page (by amount). */
export async function smallestBillIndex(page: Page): Promise<number> {
  const amounts = await page
    .getByTestId('bill-row')
    .evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-amount-minor'))));
  expect(amounts.length, 'the client has open bills').toBeGreaterThan(0);
  expect(amounts.every((a) => Number.isInteger(a) && a > 0), `amounts ${amounts}`).toBe(true);
  return amounts.indexOf(Math.min(...amounts));
}

/**
 * Tick the smallest open bill and press approve. Bills are picked by their
 * properties, never by position: the order depends on the sandbox's dates.
 */
export async function approveSmallestBill(page: Page): Promise<void> {
  await billBoxes(page).nth(await smallestBillIndex(page)).check();
  await pressApprove(page);
}

/**
 * Press "Approve selected…". With JavaScript on it asks first (the number
 * of bills, the total, the client): confirm. With it off the form posts.
 */
export async function pressApprove(page: Page): Promise<void> {
  await page.getByTestId('approve').click();
  if ((await page.locator('body[data-hydrated="true"]').count()) > 0) {
    await page.getByTestId('confirm-approve').click();
  }
}

/**
 * An approval the page itself holds back (JavaScript on: the button is
 * disabled with the reason beside it) or the server refuses (JavaScript
 * off: the error after the post) says `text`.
 */
export async function expectApprovalRefused(page: Page, javaScriptEnabled: boolean, text: string): Promise<void> {
  if (javaScriptEnabled) {
    await expect(page.getByTestId('approve')).toBeDisabled();
    await expect(page.getByTestId('approve-blocked')).toContainText(text);
  } else {
    await page.getByTestId('approve').click();
    await expect(page.getByTestId('approve-error')).toContainText(text);
  }
  await expect(page.getByTestId('approve-result').filter({ hasText: 'Approved' })).toHaveCount(0);
}
