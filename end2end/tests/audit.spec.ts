import { test, expect, settle, signIn } from './helpers';
import { readFileSync } from 'node:fs';

// Runs in both projects (JavaScript on and off): the audit log reads as
// sentences, filters by actor with a plain GET form, and downloads exactly
// the filtered entries as CSV.

const ADMIN = 'admin@northwind.test';

test('the audit page filters by actor and downloads the filtered CSV', async ({ page, javaScriptEnabled }) => {
  await signIn(page, javaScriptEnabled, ADMIN);
  await page.goto('/audit');
  await settle(page, javaScriptEnabled);
  const rows = page.getByTestId('audit-row');
  await expect(rows.first()).toBeVisible();
  // The sign-in just made is the newest entry, as a sentence.
  await expect(rows.first()).toContainText(`${ADMIN} signed in.`);

  await page.getByTestId('audit-actor').selectOption('user');
  await page.getByTestId('audit-filter').click();
  await expect(page).toHaveURL(/actor=user/);
  await settle(page, javaScriptEnabled);
  const kinds = await rows.locator('.meta .kind').allTextContents();
  expect(kinds.length).toBeGreaterThan(0);
  expect(new Set(kinds.map((k) => k.trim()))).toEqual(new Set(['user']));

  // The CSV link carries the filter: every exported entry is a person's.
  await expect(page.getByTestId('export-csv')).toHaveAttribute('href', /actor_kind=user/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()]);
  const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
  expect(csv[0]).toBe('seq,at,actor_kind,actor,action,subject,detail,prev_hash,hash');
  expect(csv.length).toBeGreaterThan(1);
  for (const line of csv.slice(1)) {
    expect(line.split(',')[2]).toBe('user');
  }
});
