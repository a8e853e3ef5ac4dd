import { test, expect, submitLogin, settle, signIn } from './helpers';

// Runs in both projects (JavaScript on and off): an admin invites a new
// advisor from the People page, the link is opened in a fresh browser, the
// advisor chooses a password and signs in. Each run invites its own address.

const ADMIN = 'admin@northwind.test';

test('an admin invites an advisor, who joins by the link and signs in', async ({ page, browser, javaScriptEnabled }) => {
  const email = `joiner-${javaScriptEnabled ? 'js' : 'nojs'}-${Date.now()}@northwind.test`;
  await signIn(page, javaScriptEnabled, ADMIN);
  await page.goto('/users');
  await settle(page, javaScriptEnabled);
  await expect(page.getByTestId('person').filter({ hasText: ADMIN })).toBeVisible();
  await page.getByTestId('invite-email').fill(email);
  await page.getByTestId('invite-role').selectOption('advisor');
  await page.getByTestId('invite').click();
  // With or without JavaScript the page comes back showing the link once.
  const link = page.getByTestId('issued-link');
  await expect(link).toBeVisible();
  await settle(page, javaScriptEnabled);
  await expect(page.getByTestId('invite-row').filter({ hasText: email })).toBeVisible();
  const path = (await link.getAttribute('href'))!;
  expect(path).toMatch(/^\/welcome\?token=[0-9a-f]{64}$/);

  // The newcomer, in a browser of their own.
  const context = await browser.newContext({ javaScriptEnabled });
  const newcomer = await context.newPage();
  await newcomer.goto(path);
  await settle(newcomer, javaScriptEnabled);
  await expect(newcomer.getByRole('heading', { name: 'Join your firm on RowCol' })).toBeVisible();
  await expect(newcomer.locator('main')).toContainText(email);
  await newcomer.getByTestId('welcome-name').fill('Nia Newcomer');
  await newcomer.getByTestId('welcome-password').fill('a-long-enough-password');
  await newcomer.getByTestId('welcome-submit').click();
  await expect(newcomer.getByTestId('welcome-done')).toBeVisible();
  await submitLogin(newcomer, javaScriptEnabled, email, 'a-long-enough-password');
  await expect(newcomer.getByTestId('portfolio')).toBeVisible();
  await expect(newcomer.locator('header')).toContainText(`${email} · advisor`);
  await context.close();

  // The admin sees the newcomer among the people.
  await page.goto('/users');
  await settle(page, javaScriptEnabled);
  await expect(page.getByTestId('person').filter({ hasText: email })).toHaveAttribute('data-active', 'true');
});
