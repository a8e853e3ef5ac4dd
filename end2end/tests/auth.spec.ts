import { test, expect, ADVISOR, DEMO_PASSWORD, settle, signIn, submitLogin } from './helpers';

// Runs in both projects (JavaScript on and off).

test.describe('with a wrong password', () => {
  // The refused sign-in answers 401, which the browser logs.
  test.use({ allowConsoleErrors: [/status of 401/] });

test('wrong password shows an error and stays on /login', async ({ page, javaScriptEnabled }) => {
  await submitLogin(page, javaScriptEnabled, ADVISOR, `${DEMO_PASSWORD}-wrong`);
  await expect(page.getByTestId('login-error')).toBeVisible();
  await expect(page.getByTestId('login-error')).not.toBeEmpty();
  await expect(page).toHaveURL(/\/login(?:[?#].*)?$/);
  await expect(page.getByTestId('portfolio')).toHaveCount(0);
});
});

test('right password lands on the portfolio with at least 20 clients', async ({
  page,
  javaScriptEnabled,
}) => {
  await signIn(page, javaScriptEnabled, ADVISOR);
  await expect(page).not.toHaveURL(/\/login/);
  const rows = page.getByTestId('portfolio').getByTestId('client-row');
  await expect.poll(() => rows.count()).toBeGreaterThanOrEqual(20);
  // Every client row links to its client page by name.
  await expect(rows.first().getByRole('link')).toHaveAttribute('href', /\/clients\//);

  // The navigation of a signed-in user. "Sign out" may be a link or a button
  // in a form (a no-JS sign-out has to POST), so accept either.
  for (const name of ['Portfolio', 'Hygiene', 'Audit']) {
    await expect(page.getByRole('link', { name, exact: true }).first()).toBeVisible();
  }
  await expect(
    page
      .getByRole('link', { name: 'Sign out', exact: true })
      .or(page.getByRole('button', { name: 'Sign out', exact: true }))
      .first(),
  ).toBeVisible();
  await settle(page, javaScriptEnabled);
});
