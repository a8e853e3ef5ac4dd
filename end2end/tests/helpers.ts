import { expect, type Page } from '@playwright/test';

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

/** Tick the first bill and press approve. */
export async function approveFirstBill(page: Page): Promise<void> {
  await billBoxes(page).first().check();
  await page.getByTestId('approve').click();
}
