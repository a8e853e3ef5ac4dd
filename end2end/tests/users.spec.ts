import { test, expect, submitLogin, settle, signIn } from './helpers';
import { createHmac } from 'node:crypto';

/** RFC 6238 (SHA-1, 6 digits, 30 s): what an authenticator app shows for a base32 key. */
function totp(base32: string, at = Date.now()): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, '0');
}

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

  {
    // The advisor turns on two-step sign-in, then signs in with a code.
    await newcomer.goto('/account');
    await settle(newcomer, javaScriptEnabled);
    await newcomer.getByTestId('totp-start').click();
    await expect(newcomer.locator('.qr svg')).toBeVisible();
    await settle(newcomer, javaScriptEnabled);
    const key = (await newcomer.getByTestId('totp-secret').textContent())!.trim();
    await newcomer.getByTestId('totp-code').fill(totp(key));
    await newcomer.getByTestId('totp-confirm').click();
    await expect(newcomer.getByTestId('recovery-codes').locator('li')).toHaveCount(10);
    await newcomer.context().clearCookies();
    await submitLogin(newcomer, javaScriptEnabled, email, 'a-long-enough-password');
    await expect(newcomer.getByTestId('login-error')).toContainText('6-digit code');
    // Without JavaScript the form came back empty: fill it again.
    await newcomer.locator('input[name=email]').fill(email);
    await newcomer.locator('input[name=password]').fill('a-long-enough-password');
    await newcomer.getByTestId('login-code').fill(totp(key, Date.now() + 30_000));
    await newcomer.locator('button[type=submit]').click();
    await expect(newcomer.getByTestId('portfolio')).toBeVisible();
  }
  await context.close();

  // The admin sees the newcomer among the people.
  await page.goto('/users');
  await settle(page, javaScriptEnabled);
  await expect(page.getByTestId('person').filter({ hasText: email })).toHaveAttribute('data-active', 'true');
});
