import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { test, expect, ADVISOR, settle, signIn } from './helpers';

// Issue #16: deciding across the portfolio on /approvals. Runs in both
// projects (JavaScript on and off) on the shared database, so each run
// picks its bills by their properties, never by position. Birch Lane
// Bakery is the tight client: all its open bills together always break its
// buffer (and, once an admin has overridden one, any of them does). Cedar
// Ridge Veterinary gets a dual-control threshold of 0.01 here, so every one
// of its bills waits for a second approver. Alder Creek Dental is left to
// the other specs.

const ADMIN = 'admin@northwind.test';
const ALDER = 'Alder Creek Dental';
const BIRCH = 'Birch Lane Bakery';
const CEDAR = 'Cedar Ridge Veterinary';

async function clientIds(page: Page): Promise<Record<string, string>> {
  const res = await page.request.post('/api/portfolio');
  expect(res.status()).toBe(200);
  const rows: { name: string; client_id: string }[] = await res.json();
  return Object.fromEntries(rows.map((r) => [r.name, r.client_id]));
}

const rows = (page: Page) => page.getByTestId('approval-row');

/** Rows of one client on the approvals page. */
const rowsOf = (page: Page, clientId: string) => page.locator(`[data-testid=approval-row][data-client="${clientId}"]`);

/** The smallest row among `locator`'s, by amount. */
async function smallest(locator: ReturnType<typeof rowsOf>) {
  const amounts = await locator.evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-amount-minor'))));
  expect(amounts.length).toBeGreaterThan(0);
  return locator.nth(amounts.indexOf(Math.min(...amounts)));
}

async function axeClean(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)).toEqual([]);
}

async function noSidewaysScroll(page: Page, path: string) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, `${path} scrolls sideways`).toBeLessThanOrEqual(390);
}

test('a cross-client batch: the buffer refuses one client, one bill waits, the rest pass; a second approver completes it', async ({
  page,
  javaScriptEnabled: js,
}) => {
  // An admin sets Cedar Ridge's dual-control threshold to 0.01.
  await signIn(page, js, ADMIN);
  const ids = await clientIds(page);
  const set = await page.request.post('/api/set_client_policy', {
    form: { client_id: ids[CEDAR], dual_control_threshold_minor: '1' },
  });
  expect(set.status(), await set.text()).toBe(200);

  await page.context().clearCookies();
  await signIn(page, js, ADVISOR);
  await page.goto('/approvals?sort=client&per_page=500');
  await settle(page, js);
  await expect(rows(page).first()).toBeVisible();

  // One bill that passes: suggested (fits its client's buffer), of another
  // client, needing one approver.
  const others = rows(page).filter({ hasNot: page.locator('[data-rule=second_approval_required]') });
  const passing = others
    .and(page.locator('[data-suggested=true]'))
    .and(
      page.locator(
        `:not([data-client="${ids[BIRCH]}"]):not([data-client="${ids[CEDAR]}"]):not([data-client="${ids[ALDER]}"])`,
      ),
    )
    .first();
  await expect(passing).toBeVisible();
  const passingClient = (await passing.getAttribute('data-client'))!;
  await passing.locator('input[type=checkbox]').check();
  // Cedar's smallest: waits for a second approver.
  const waiting = await smallest(rowsOf(page, ids[CEDAR]));
  await waiting.locator('input[type=checkbox]').check();
  // All of Birch Lane's: over its buffer.
  const birch = rowsOf(page, ids[BIRCH]);
  const n = await birch.count();
  expect(n).toBeGreaterThan(0);
  for (let i = 0; i < n; i++) await birch.nth(i).locator('input[type=checkbox]').check();

  if (js) {
    // The what-if follows the selection; the button holds back and says why.
    await expect(page.getByTestId('what-if').filter({ hasText: BIRCH })).toContainText('FAIL');
    await expect(page.getByTestId('approve-batch')).toBeDisabled();
    await expect(page.getByTestId('approve-blocked')).toContainText(`${BIRCH} would break its buffer`);
    await expect(page.getByTestId('selection-summary')).toContainText(`${n + 2} bills`);
    for (let i = 0; i < n; i++) await birch.nth(i).locator('input[type=checkbox]').uncheck();
    await expect(page.getByTestId('approve-batch')).toBeEnabled();
    await page.getByTestId('approve-batch').click();
    // A confirmation names the bills, the total and the clients.
    await expect(page.getByTestId('confirm')).toContainText('2 bills');
    await expect(page.getByTestId('confirm')).toContainText(CEDAR);
    await page.getByTestId('confirm-approve').click();
  } else {
    await page.getByTestId('approve-batch').click();
    const refused = page.locator(`[data-testid=batch-client][data-client="${ids[BIRCH]}"]`);
    await expect(refused).toContainText('refused');
    await expect(refused.locator('[data-rule=buffer]').first()).toBeVisible();
  }
  const result = page.getByTestId('batch-result');
  await expect(result.locator(`[data-client="${passingClient}"]`)).toContainText('approved');
  await expect(result.locator(`[data-client="${ids[CEDAR]}"]`)).toContainText('1 waiting for a second approver');

  // The second approver (another person) completes it from the waiting list.
  await page.context().clearCookies();
  await signIn(page, js, ADMIN);
  await page.goto('/approvals/waiting');
  await settle(page, js);
  const row = page.getByTestId('waiting-row').filter({ hasText: CEDAR }).filter({ hasText: ADVISOR }).first();
  await expect(row).toBeVisible();
  const payment = (await row.getAttribute('data-payment'))!;
  await row.getByTestId('approve-second').click();
  await expect(page.locator(`[data-testid=waiting-row][data-payment="${payment}"]`)).toHaveCount(0);
  // Its page shows both approvers.
  await page.goto(`/payments/${payment}`);
  await settle(page, js);
  await expect(page.getByTestId('approval')).toHaveCount(2);
  await expect(page.getByTestId('approvals')).toContainText(ADVISOR);
  await expect(page.getByTestId('approvals')).toContainText(ADMIN);

  // Not paid yet, so it can still be stopped, with a reason.
  if (js) {
    await page.setViewportSize({ width: 390, height: 844 });
    await axeClean(page);
    await noSidewaysScroll(page, '/payments/…');
  }
  await page.getByTestId('stop-reason').fill('client asked to hold this payment');
  await page.getByTestId('stop-payment').click();
  await settle(page, js);
  await expect(page.locator('[data-testid=custody-step][data-state=cancelled]')).toBeVisible();
  await expect(page.getByTestId('custody-step').filter({ hasText: 'client asked to hold' })).toBeVisible();
  await expect(page.getByTestId('stop-payment')).toHaveCount(0);
});

test('an admin overrides a buffer refusal with a reason, and it shows in the tray', async ({ page, javaScriptEnabled: js }) => {
  await signIn(page, js, ADMIN);
  const ids = await clientIds(page);
  await page.goto(`/approvals?client_id=${ids[BIRCH]}&sort=amount&desc=1`);
  await settle(page, js);
  // Birch Lane's largest open bill breaks its buffer alone.
  const big = rows(page).first();
  await big.locator('input[type=checkbox]').check();
  if (js) {
    await expect(page.getByTestId('approve-batch')).toBeDisabled();
    await page.getByTestId('override-reason').fill('Owner wires a loan in this afternoon.');
    await expect(page.getByTestId('approve-batch')).toBeEnabled();
    await page.getByTestId('approve-batch').click();
    await page.getByTestId('confirm-approve').click();
  } else {
    await page.getByTestId('override-reason').fill('Owner wires a loan in this afternoon.');
    await page.getByTestId('approve-batch').click();
  }
  await expect(page.getByTestId('batch-result')).toContainText('Overridden with a reason');
  await page.goto('/hygiene');
  await settle(page, js);
  await expect(page.getByTestId('hygiene-row').filter({ hasText: 'override_review' }).first()).toContainText(
    'Owner wires a loan in this afternoon.',
  );
  // The bill (over the dual-control threshold) waits for a second person;
  // rejecting it releases its cash at once, and Birch Lane is as it was for
  // the other specs.
  await page.goto('/approvals/waiting');
  await settle(page, js);
  const row = page.getByTestId('waiting-row').filter({ hasText: BIRCH }).first();
  await expect(row.getByTestId('own-approval')).toBeVisible();
  const payment = (await row.getAttribute('data-payment'))!;
  await row.getByTestId('reject-reason').fill('The loan did not arrive.');
  await row.getByTestId('reject').click();
  await expect(page.locator(`[data-testid=waiting-row][data-payment="${payment}"]`)).toHaveCount(0);
});

test('keyboard only: the suggested batch is ticked with one key, and approving asks first', async ({ page, javaScriptEnabled: js }) => {
  test.skip(!js, 'the keys are JavaScript');
  await signIn(page, js, ADVISOR);
  await page.goto('/approvals');
  await settle(page, js);
  const suggested = page.locator('[data-testid=approval-row][data-suggested=true]');
  const n = await suggested.count();
  expect(n, 'some bill is suggested').toBeGreaterThan(0);
  await page.locator('input[data-row="0"]').focus();
  await page.keyboard.press('j');
  await expect(page.locator('input[data-row="1"]')).toBeFocused();
  await page.keyboard.press('k');
  await expect(page.locator('input[data-row="0"]')).toBeFocused();
  await page.keyboard.press('s');
  await expect(page.locator('[data-testid=approval-row] input:checked')).toHaveCount(n);
  await expect(suggested.locator('input:checked')).toHaveCount(n);
  await page.keyboard.press('a');
  await expect(page.getByTestId('confirm')).toBeVisible();
  await expect(page.getByTestId('confirm')).toContainText(`${n} bill`);
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('confirm')).toHaveCount(0);
});

test('the decision pages pass axe and fit a phone', async ({ page, javaScriptEnabled: js }) => {
  // axe and the width are measured by scripts in the page: the DOM is the
  // same server-rendered one either way.
  test.skip(!js, 'axe runs in the page');
  await signIn(page, js, ADMIN);
  const ids = await clientIds(page);
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of [
    '/',
    '/approvals',
    '/approvals/waiting',
    `/clients/${ids[BIRCH]}`,
    '/hygiene',
    '/hygiene?state=all',
    '/audit',
    '/connections',
    '/users',
    '/account',
    '/updates',
  ]) {
    await page.goto(path);
    await settle(page, js);
    await axeClean(page);
    await noSidewaysScroll(page, path);
  }
});
