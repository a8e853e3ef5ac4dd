import { type APIRequestContext, type Locator, type Page, type TestInfo } from '@playwright/test';
import { test, expect, ADVISOR, approveSmallestBill, billBoxes, expectApprovalRefused, openClient, settle, signIn, smallestBillIndex } from './helpers';

// Issue #8: the Connections page driven in a real browser, through the
// simulated providers' own pages (Intuit, Ramp and Stripe consent; Plaid
// Hosted Link). Runs in both projects (JavaScript on and off) against ONE
// server and database, so every test works on clients of its own, chosen
// per project: no test depends on another's leftovers, nor on their order,
// and the clients other specs use (Alder Creek Dental, Birch Lane Bakery)
// are left alone.

const ADMIN = 'admin@northwind.test';

// The simulated providers' demo sign-ins (GET /sandbox/control/credentials
// lists them under "sign_in").
const SIGN_IN = {
  qbo: { user: 'owner@clients.test', pass: 'intuit-sandbox' },
  ramp: { user: 'admin@clients.test', pass: 'ramp-sandbox' },
  stripe: { user: 'owner@clients.test', pass: 'stripe-sandbox' },
} as const;
type OAuthRail = keyof typeof SIGN_IN;

// Demo clients these tests break and repair, one per project.
const PLAID_FAULT_CLIENT: Record<string, string> = {
  hydrated: 'Cedar Ridge Veterinary',
  'no-js': 'Driftwood Coffee Roasters',
};
const QBO_REVOKED_CLIENT: Record<string, string> = {
  hydrated: 'Elm Street Pediatrics',
  'no-js': 'Fern Hollow Landscaping',
};

function perProject(map: Record<string, string>, info: TestInfo): string {
  const name = map[info.project.name];
  expect(name, `a client for project ${info.project.name}`).toBeTruthy();
  return name;
}

type SandboxClient = {
  name: string;
  qbo: { realm_id: string };
  plaid: { item_id: string };
};

/** The world's companies, from the sandbox's credentials listing. */
async function sandboxClients(request: APIRequestContext): Promise<SandboxClient[]> {
  const res = await request.get('/sandbox/control/credentials');
  expect(res.status(), 'GET /sandbox/control/credentials').toBe(200);
  const body = await res.json();
  expect(Array.isArray(body.clients), 'credentials list clients').toBe(true);
  return body.clients as SandboxClient[];
}

async function sandboxClient(request: APIRequestContext, name: string): Promise<SandboxClient> {
  const found = (await sandboxClients(request)).find((c) => c.name === name);
  expect(found, `the sandbox has ${name}`).toBeTruthy();
  return found as SandboxClient;
}

async function controlPost(request: APIRequestContext, path: string, data: unknown): Promise<void> {
  const res = await request.post(path, { data });
  expect(res.ok(), `POST ${path}: ${res.status()} ${await res.text()}`).toBe(true);
}

function section(page: Page, client: string): Locator {
  return page.locator(`[data-testid=client-connections][data-client="${client}"]`);
}

function railRow(page: Page, client: string, rail: string): Locator {
  return section(page, client).locator(`[data-testid=rail-row][data-rail=${rail}]`);
}

async function openConnections(page: Page, js: boolean): Promise<void> {
  await page.goto('/connections');
  await expect(page.getByRole('heading', { name: 'Connections', level: 1 })).toBeVisible();
  await settle(page, js);
}

/** Back on RowCol after a provider: /connections with the flash. */
async function landedOnConnections(page: Page, js: boolean, flash: string | RegExp): Promise<void> {
  await expect(page).toHaveURL(/\/connections\?/);
  await settle(page, js);
  await expect(page.getByTestId('connections-flash')).toContainText(flash);
}

/**
 * Jobs run in the background worker: reload the page until the rail's row
 * shows `health` (up to ~20 s).
 */
async function waitForHealth(page: Page, js: boolean, client: string, rail: string, health: string) {
  await expect(async () => {
    await page.reload();
    await settle(page, js);
    await expect(railRow(page, client, rail)).toHaveAttribute('data-health', health, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
}

/**
 * At the simulated Intuit / Ramp / Stripe: sign in with the demo user, pick
 * `account` by its name, press Allow or Deny. The browser then goes back to
 * RowCol's callback.
 */
async function consent(page: Page, rail: OAuthRail, account: string, decision: 'Allow' | 'Deny') {
  const who = SIGN_IN[rail];
  await expect(page.locator('input[name=username]')).toBeVisible();
  await page.locator('input[name=username]').fill(who.user);
  await page.locator('input[name=password]').fill(who.pass);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const select = page.locator('select[name=account]');
  await expect(select).toBeVisible();
  await select.selectOption({ label: account });
  await page.getByRole('button', { name: decision, exact: true }).click();
}

/** Plaid Hosted Link: the bank, its login, then the business's account. */
async function plaidLink(page: Page, business: string) {
  const institution = page.locator('select[name=institution]');
  await expect(institution).toBeVisible();
  await institution.selectOption({ index: 0 });
  await page.getByRole('button', { name: 'Continue' }).click();
  // Plaid's sandbox test credentials; a wrong password is refused first.
  await page.locator('input[name=username]').fill('user_good');
  await page.locator('input[name=password]').fill('pass_bad');
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByRole('alert')).toContainText('not correct');
  await page.locator('input[name=username]').fill('user_good');
  await page.locator('input[name=password]').fill('pass_good');
  await page.getByRole('button', { name: 'Continue' }).click();
  const account = page.locator('select[name=account]');
  await expect(account).toBeVisible();
  const value = await account.locator('option', { hasText: business }).first().getAttribute('value');
  expect(value, `an account of ${business} at the bank`).toBeTruthy();
  await account.selectOption(value as string);
  await page.getByRole('button', { name: 'Continue' }).click();
}

test.describe('an admin', () => {
  // RowCol's "did not grant access" page answers 400, which the browser logs.
  test.use({ allowConsoleErrors: [/status of 400/] });

  test('adds a client from QuickBooks, then connects Ramp, the bank and Stripe', async ({
    page,
    javaScriptEnabled: js,
  }, testInfo) => {
    // The last two companies of the world are not clients of the demo firm:
    // one per project.
    const all = await sandboxClients(page.request);
    expect(all.length).toBeGreaterThanOrEqual(4);
    const client = all[all.length - (testInfo.project.name === 'no-js' ? 1 : 2)].name;

    await signIn(page, js, ADMIN);
    await openConnections(page, js);
    const sections = page.getByTestId('client-connections');
    await expect(sections.first()).toBeVisible();
    const before = await sections.count();
    await expect(section(page, client)).toHaveCount(0);

    // Denied at Intuit: RowCol says so and stores nothing.
    await page.getByTestId('add-client-qbo').click();
    await expect(page.getByRole('heading', { name: 'Sign in to Intuit' })).toBeVisible();
    // A wrong password is refused at the provider.
    await page.locator('input[name=username]').fill(SIGN_IN.qbo.user);
    await page.locator('input[name=password]').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toContainText('Wrong username or password');
    await consent(page, 'qbo', client, 'Deny');
    await expect(page).toHaveURL(/\/connect\/qbo\/callback\?.*error=access_denied/);
    await expect(page.getByRole('heading', { name: 'Not connected' })).toBeVisible();
    await expect(page.getByRole('alert')).toContainText('did not grant access');
    await expect(page.getByRole('alert')).toContainText('Nothing was connected');
    await page.getByRole('link', { name: 'Back to Connections' }).click();
    await expect(page).toHaveURL(/\/connections$/);
    await settle(page, js);
    await expect(sections.first()).toBeVisible();
    await expect(sections).toHaveCount(before);
    await expect(section(page, client)).toHaveCount(0);

    // Allowed: the client is created, named by its QuickBooks company.
    await page.getByTestId('add-client-qbo').click();
    await consent(page, 'qbo', client, 'Allow');
    await landedOnConnections(page, js, 'Connected QuickBooks Online.');
    await expect(sections).toHaveCount(before + 1);
    await expect(railRow(page, client, 'qbo')).toHaveAttribute('data-health', 'connected');
    // Who connected it (the demo admin's name) and what: the company.
    await expect(railRow(page, client, 'qbo')).toContainText('Ada Admin');
    await expect(railRow(page, client, 'qbo')).toContainText(client);
    for (const rail of ['ramp', 'plaid', 'stripe']) {
      await expect(railRow(page, client, rail)).toHaveAttribute('data-health', 'never');
      await expect(section(page, client).getByTestId(`connect-${rail}`)).toHaveText('Connect');
    }

    // Ramp: the business of the same name.
    await section(page, client).getByTestId('connect-ramp').click();
    await expect(page.getByRole('heading', { name: 'Sign in to Ramp' })).toBeVisible();
    await consent(page, 'ramp', client, 'Allow');
    await landedOnConnections(page, js, 'Connected Ramp.');
    await expect(railRow(page, client, 'ramp')).toHaveAttribute('data-health', 'connected');

    // The bank, through Plaid Hosted Link.
    await section(page, client).getByTestId('connect-plaid').click();
    await plaidLink(page, client);
    await landedOnConnections(page, js, 'Connected the bank (Plaid).');
    await expect(railRow(page, client, 'plaid')).toHaveAttribute('data-health', 'connected');
    await expect(railRow(page, client, 'plaid')).toContainText('••');

    // Stripe, through Stripe Apps OAuth.
    await section(page, client).getByTestId('connect-stripe').click();
    await expect(page.getByRole('heading', { name: 'Sign in to Stripe' })).toBeVisible();
    await consent(page, 'stripe', client, 'Allow');
    await landedOnConnections(page, js, 'Connected Stripe.');

    // All four, as the server has them now.
    await page.reload();
    await settle(page, js);
    for (const rail of ['qbo', 'ramp', 'plaid', 'stripe']) {
      await expect(railRow(page, client, rail), rail).toHaveAttribute('data-health', 'connected');
      await expect(section(page, client).getByTestId(`connect-${rail}`)).toHaveText('Reconnect');
    }
    await expect(section(page, client)).toHaveAttribute('data-broken', 'false');
  });
});

test('an advisor sees the connections but cannot change them', async ({ page, javaScriptEnabled: js, baseURL }) => {
  await signIn(page, js, ADVISOR);
  await openConnections(page, js);
  const client = 'Alder Creek Dental';
  await expect(railRow(page, client, 'qbo')).toHaveAttribute('data-health', 'connected');
  await expect(page.getByText('Only an admin of your firm can connect or disconnect rails.')).toBeVisible();
  await expect(page.getByTestId('add-client-qbo')).toHaveCount(0);
  await expect(page.locator('[data-testid^="connect-"]')).toHaveCount(0);
  await expect(page.getByRole('button', { name: /Disconnect|Sync now|Use key/ })).toHaveCount(0);

  // The buttons are missing, and the server refuses the requests anyway
  // (same origin, the advisor's own session).
  const href = await section(page, client).getByRole('link', { name: client }).getAttribute('href');
  const clientId = href?.split('/').pop() ?? '';
  expect(clientId).not.toBe('');
  const post = (path: string, form?: Record<string, string>) =>
    page.request.post(path, { form, headers: { Origin: baseURL as string }, maxRedirects: 0 });
  const start = await post('/connect/ramp/start', { client_id: clientId });
  expect(start.status()).toBe(403);
  expect(await start.text()).toContain('Only an admin');
  expect((await post(`/connections/${clientId}/ramp/disconnect`)).status()).toBe(403);
  // A refresh changes no connection: advisors may ask for one.
  expect((await post(`/connections/${clientId}/sync`)).status()).toBe(303);

  // Nothing changed.
  await page.reload();
  await settle(page, js);
  await expect(railRow(page, client, 'ramp')).toHaveAttribute('data-health', 'connected');
});

test.describe('a broken rail', () => {
  // The refused approval answers 409, which the browser logs (JavaScript on).
  test.use({ allowConsoleErrors: [/status of 409/] });

  test('a bank that needs its login blocks approvals until it is repaired in Link', async ({
    page,
    javaScriptEnabled: js,
  }, testInfo) => {
    const client = perProject(PLAID_FAULT_CLIENT, testInfo);
    const item = (await sandboxClient(page.request, client)).plaid.item_id;
    expect(item).toBeTruthy();

    // The bank starts answering ITEM_LOGIN_REQUIRED for this item.
    const faults = await (await page.request.get('/sandbox/control/faults')).json();
    faults.plaid_login_required = [item];
    await controlPost(page.request, '/sandbox/control/faults', faults);

    await signIn(page, js, ADMIN);
    await openConnections(page, js);
    await expect(railRow(page, client, 'plaid')).toHaveAttribute('data-health', 'connected');
    await section(page, client).getByRole('button', { name: 'Sync now' }).click();
    await landedOnConnections(page, js, 'A sync was started');
    await waitForHealth(page, js, client, 'plaid', 'needsreconnect');
    await expect(section(page, client)).toHaveAttribute('data-broken', 'true');
    await expect(section(page, client).getByTestId('connect-plaid')).toHaveText('Repair login');
    // The other rails are fine.
    await expect(railRow(page, client, 'qbo')).toHaveAttribute('data-health', 'connected');

    // The portfolio shows the client untrusted, and why.
    const reason = 'the bank (Plaid) needs its login renewed';
    await page.goto('/');
    await settle(page, js);
    const row = page.getByTestId('client-row').filter({ has: page.getByRole('link', { name: client, exact: true }) });
    await expect(row).toContainText('Untrusted');
    await expect(row.getByTestId('connection-issue')).toContainText(reason);

    // An approval for the client is refused with the reason.
    await openClient(page, js, client);
    await billBoxes(page).nth(await smallestBillIndex(page)).check();
    await expectApprovalRefused(page, js, `paused: ${reason}`);

    // Repair: Link in update mode asks for the login only.
    await openConnections(page, js);
    await section(page, client).getByTestId('connect-plaid').click();
    await expect(page.locator('input[name=username]')).toBeVisible();
    await expect(page.locator('select[name=institution]')).toHaveCount(0);
    await page.locator('input[name=username]').fill('user_good');
    await page.locator('input[name=password]').fill('pass_good');
    await page.getByRole('button', { name: 'Continue' }).click();
    await landedOnConnections(page, js, 'The bank login was renewed.');
    await expect(railRow(page, client, 'plaid')).toHaveAttribute('data-health', 'connected');
    await expect(section(page, client)).toHaveAttribute('data-broken', 'false');
    // The login at the bank is what was fixed: the fault is gone there too.
    const after = await (await page.request.get('/sandbox/control/faults')).json();
    expect(after.plaid_login_required).not.toContain(item);

    await page.goto('/');
    await settle(page, js);
    await expect(row.getByTestId('connection-issue')).toHaveCount(0);
    await expect(row).not.toContainText('Untrusted');
  });

  test('a QuickBooks refresh answered invalid_grant needs a reconnect, done through Intuit', async ({
    page,
    javaScriptEnabled: js,
  }, testInfo) => {
    const client = perProject(QBO_REVOKED_CLIENT, testInfo);
    const realm = (await sandboxClient(page.request, client)).qbo.realm_id;
    expect(realm).toBeTruthy();

    // The company withdrew consent at Intuit, and the access token RowCol
    // holds is dead early: RowCol's call is refused (401), its refresh is
    // answered invalid_grant.
    await controlPost(page.request, '/sandbox/control/oauth/revoke', { rail: 'qbo', account: realm });
    await controlPost(page.request, '/sandbox/control/oauth/expire', { rail: 'qbo', account: realm });

    await signIn(page, js, ADMIN);
    await openConnections(page, js);
    await section(page, client).getByRole('button', { name: 'Sync now' }).click();
    await landedOnConnections(page, js, 'A sync was started');
    await waitForHealth(page, js, client, 'qbo', 'needsreconnect');
    await expect(section(page, client)).toHaveAttribute('data-broken', 'true');
    await expect(section(page, client).getByTestId('connect-qbo')).toHaveText('Reconnect');

    const reason = 'QuickBooks Online needs to be reconnected';
    await page.goto('/');
    await settle(page, js);
    const row = page.getByTestId('client-row').filter({ has: page.getByRole('link', { name: client, exact: true }) });
    await expect(row).toContainText('Untrusted');
    await expect(row.getByTestId('connection-issue')).toContainText(reason);

    await openClient(page, js, client);
    await billBoxes(page).nth(await smallestBillIndex(page)).check();
    await expectApprovalRefused(page, js, `paused: ${reason}`);

    // Reconnect the same company through Intuit's consent pages.
    await openConnections(page, js);
    await section(page, client).getByTestId('connect-qbo').click();
    await expect(page.getByRole('heading', { name: 'Sign in to Intuit' })).toBeVisible();
    await consent(page, 'qbo', client, 'Allow');
    await landedOnConnections(page, js, 'Connected QuickBooks Online.');
    await expect(railRow(page, client, 'qbo')).toHaveAttribute('data-health', 'connected');
    await expect(section(page, client)).toHaveAttribute('data-broken', 'false');

    await page.goto('/');
    await settle(page, js);
    await expect(row.getByTestId('connection-issue')).toHaveCount(0);
  });
});
