// The official Node library (stripe@23.1.0, unchanged) judges the Stripe
// simulator: reads, pagination, writes, card declines, idempotency, errors,
// rate limiting, a report run whose CSV downloads, and a webhook endpoint
// whose signed delivery `stripe.webhooks.constructEvent` accepts. The library takes a
// host, port and protocol but no path prefix (its paths are `/v1/...`), so
// it talks to the Stripe routes the example server also mounts at the root
// of its port (sandbox/examples/serve.rs). Each step asserts and prints one
// line; the first failure exits non-zero. Steps are a second apart (25
// requests per second per account; the library does not retry a 429).
import http from 'node:http';
import Stripe from 'stripe';

const BASE = process.env.SANDBOX_BASE.replace(/\/$/, '');
const url = new URL(BASE);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fail(msg) {
  console.log(`FAIL ${msg}`);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) fail(msg);
}
async function step(name, fn) {
  let detail;
  try {
    detail = await fn();
  } catch (e) {
    fail(`${name}: ${e.type || e.name}: ${e.message}`);
  }
  console.log(`ok   ${name}: ${detail}`);
  await sleep(1050);
}
async function expectError(promise, type) {
  try {
    await promise;
  } catch (e) {
    check(e.type === type, `expected ${type}, got ${e.type}: ${e.message}`);
    return e;
  }
  fail(`expected ${type}, the call succeeded`);
}

const creds = await (await fetch(`${BASE}/control/credentials`)).json();
const client = creds.clients[0];
const KEY = client.stripe.restricted_key;
const ACCOUNT = client.stripe.account_id;
check(KEY.startsWith('rk_test_'), 'the credentials give an rk_test_ key');
const opts = { host: url.hostname, port: Number(url.port), protocol: 'http', maxNetworkRetries: 0 };
const stripe = new Stripe(KEY, opts);

await step('read: customers.retrieve and invoices.retrieve', async () => {
  const page = await stripe.customers.list({ limit: 2 });
  check(page.object === 'list' && page.data.length === 2 && page.url === '/v1/customers', 'a page of 2');
  const got = await stripe.customers.retrieve(page.data[0].id);
  check(got.id === page.data[0].id && got.email === page.data[0].email, 'the same customer');
  const inv = (await stripe.invoices.list({ limit: 1 })).data[0];
  const again = await stripe.invoices.retrieve(inv.id);
  check(again.amount_remaining === again.amount_due - again.amount_paid, 'amount_remaining');
  check(again.lastResponse.requestId.startsWith('req_'), 'Request-Id');
  return `customer ${got.id} (${got.name}), invoice ${again.id} ${again.status} ${again.number}`;
});

await step('list: invoices to the second page and auto-pagination', async () => {
  const first = await stripe.invoices.list({ limit: 3 });
  check(first.has_more, 'more than one page');
  const second = await stripe.invoices.list({ limit: 3, starting_after: first.data.at(-1).id });
  const ids = [];
  const created = [];
  for await (const inv of stripe.invoices.list({ limit: 3 })) {
    ids.push(inv.id);
    created.push(inv.created);
  }
  check(ids.length > 3 && new Set(ids).size === ids.length, `auto-pagination saw ${ids.length} distinct`);
  check(created.every((c, i) => i === 0 || created[i - 1] >= c), 'newest first');
  check(ids[3] === second.data[0].id, 'page 2 starts where auto-pagination does');
  return `${ids.length} invoices`;
});

await step('write: create customer, create + finalize + pay an invoice', async () => {
  const cus = await stripe.customers.create({ email: 'judge@node.test', name: 'Node Judge', metadata: { source: 'judge' } });
  check(cus.metadata.source === 'judge', 'metadata');
  let inv = await stripe.invoices.create({ customer: cus.id, collection_method: 'send_invoice', days_until_due: 14 });
  check(inv.status === 'draft', 'draft');
  inv = await stripe.invoices.addLines(inv.id, { lines: [{ amount: 5000, description: 'Audit' }, { amount: 2500 }] });
  check(inv.amount_due === 7500 && inv.lines.data.length === 2, `lines add up (${inv.amount_due})`);
  inv = await stripe.invoices.finalizeInvoice(inv.id);
  check(inv.status === 'open' && inv.number && inv.due_date === inv.status_transitions.finalized_at + 14 * 86400, 'open, due in 14 days');
  inv = await stripe.invoices.pay(inv.id, { payment_method: 'pm_card_visa' });
  check(inv.status === 'paid' && inv.amount_paid === 7500 && inv.amount_remaining === 0, 'paid');
  const other = await stripe.invoices.create({ customer: cus.id, collection_method: 'send_invoice', days_until_due: 14 });
  await stripe.invoiceItems.create({ customer: cus.id, invoice: other.id, amount: 900 });
  await stripe.invoices.finalizeInvoice(other.id);
  const voided = await stripe.invoices.voidInvoice(other.id);
  check(voided.status === 'void' && voided.status_transitions.voided_at, 'voided');
  return `${inv.id} ${inv.number} paid; ${voided.id} void`;
});

await step('write: PaymentIntent confirmed with pm_card_visa, one declined', async () => {
  const pi = await stripe.paymentIntents.create({
    amount: 10000, currency: 'usd', payment_method: 'pm_card_visa', payment_method_types: ['card'], confirm: true,
  });
  check(pi.status === 'succeeded', `succeeded (${pi.status})`);
  const ch = await stripe.charges.retrieve(pi.latest_charge);
  const txn = await stripe.balanceTransactions.retrieve(ch.balance_transaction);
  check(txn.fee === 320 && txn.net === 9680 && txn.reporting_category === 'charge' && txn.source === ch.id, `fee ${txn.fee}`);
  const e = await expectError(stripe.paymentIntents.create({
    amount: 2000, currency: 'usd', payment_method: 'pm_card_chargeDeclinedInsufficientFunds',
    payment_method_types: ['card'], confirm: true,
  }), 'StripeCardError');
  check(e.statusCode === 402 && e.code === 'card_declined' && e.decline_code === 'insufficient_funds', `${e.code} ${e.decline_code}`);
  check(e.payment_intent && e.payment_intent.status === 'requires_payment_method', 'the intent in the error');
  return `${pi.id} succeeded (fee ${txn.fee}); declined: StripeCardError ${e.decline_code}`;
});

await step('idempotency: replay with an Idempotency-Key', async () => {
  const key = `judge-node-${Date.now()}`;
  const a = await stripe.customers.create({ email: 'idem@node.test' }, { idempotencyKey: key });
  const b = await stripe.customers.create({ email: 'idem@node.test' }, { idempotencyKey: key });
  check(a.id === b.id, 'replayed');
  check(b.lastResponse.headers['idempotent-replayed'] === 'true', 'marked replayed');
  const e = await expectError(stripe.customers.create({ email: 'x@node.test' }, { idempotencyKey: key }), 'StripeIdempotencyError');
  check(e.statusCode === 400, '400');
  return `replayed ${a.id}; different parameters -> StripeIdempotencyError`;
});

await step('error: 404', async () => {
  const e = await expectError(stripe.customers.retrieve('cus_doesnotexist'), 'StripeInvalidRequestError');
  check(e.statusCode === 404 && e.code === 'resource_missing', `${e.statusCode} ${e.code}`);
  return `StripeInvalidRequestError 404 resource_missing (${e.requestId})`;
});

await step('error: 401', async () => {
  const bad = new Stripe('sk_test_notakey9876', opts);
  const e = await expectError(bad.customers.list(), 'StripeAuthenticationError');
  check(e.statusCode === 401, '401');
  return 'StripeAuthenticationError 401';
});

await step('auth: platform key scoped by Stripe-Account', async () => {
  const platform = new Stripe(creds.stripe.secret_key, { ...opts, stripeAccount: ACCOUNT });
  const a = await platform.customers.list({ limit: 1 });
  const b = await stripe.customers.list({ limit: 1 });
  check(a.data[0].id === b.data[0].id, 'the same account');
  const e = await expectError(new Stripe(creds.stripe.secret_key, opts).customers.list({ limit: 1 }, { stripeAccount: 'acct_nope' }), 'StripePermissionError');
  return `platform key + Stripe-Account ${ACCOUNT}; unknown account -> ${e.type} ${e.statusCode}`;
});

await step('events and payouts (?payout= filter)', async () => {
  const evs = await stripe.events.list({ type: 'invoice.voided', limit: 1 });
  check(evs.data.length === 1 && evs.data[0].data.previous_attributes.status === 'open', 'invoice.voided with previous_attributes');
  const paid = (await stripe.payouts.list({ status: 'paid', limit: 5 })).data;
  check(paid.length > 0 && paid.every((p) => p.status === 'paid' && p.automatic), 'paid automatic payouts');
  const po = paid[0];
  const txns = [];
  for await (const t of stripe.balanceTransactions.list({ payout: po.id, limit: 100 })) txns.push(t);
  const sum = txns.filter((t) => t.type !== 'payout').reduce((s, t) => s + t.net, 0);
  check(sum === po.amount, `transactions add up (${sum} vs ${po.amount})`);
  return `payout ${po.id} ${po.amount} = ${txns.length - 1} transactions`;
});

await step('reporting: a report run whose CSV downloads', async () => {
  const kind = 'payouts.itemized.3';
  const rt = await stripe.reporting.reportTypes.retrieve(kind);
  let run = await stripe.reporting.reportRuns.create({
    report_type: kind, parameters: { interval_start: rt.data_available_start, interval_end: rt.data_available_end },
  });
  check(run.status === 'pending', 'pending');
  for (let i = 0; i < 10 && run.status === 'pending'; i++) {
    await sleep(1100);
    run = await stripe.reporting.reportRuns.retrieve(run.id);
  }
  check(run.status === 'succeeded' && run.result && run.result.url, `succeeded (${run.status})`);
  const res = await fetch(run.result.url, { headers: { Authorization: `Bearer ${KEY}` } });
  check(res.ok, `download ${res.status}`);
  const lines = (await res.text()).trim().split('\n');
  const header = lines[0].split(',');
  check(header[0] === 'payout_id' && header.includes('gross') && lines.length > 1, `columns ${header.slice(0, 3)}`);
  const row = Object.fromEntries(header.map((h, i) => [h, lines[1].split(',')[i]]));
  const po = await stripe.payouts.retrieve(row.payout_id);
  check(row.gross === (po.amount / 100).toFixed(2), `decimal major units (${row.gross} vs ${po.amount})`);
  return `${run.id} -> ${run.result.id}: ${lines.length - 1} payouts`;
});

await step('webhooks: a signed invoice.paid delivery verifies with constructEvent', async () => {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ sig: req.headers['stripe-signature'], body: Buffer.concat(chunks) });
      res.writeHead(200).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const hookUrl = `http://127.0.0.1:${server.address().port}/stripe-hooks`;
    const ep = await stripe.webhookEndpoints.create({ url: hookUrl, enabled_events: ['invoice.paid'] });
    check(ep.secret && ep.secret.startsWith('whsec_'), 'the secret on create');
    const again = await stripe.webhookEndpoints.retrieve(ep.id);
    check(again.url === hookUrl && again.secret === undefined, 'no secret after create');
    const bad = await expectError(stripe.webhookEndpoints.create({ url: hookUrl }), 'StripeInvalidRequestError');
    check(bad.statusCode === 400 && bad.param === 'enabled_events', `${bad.statusCode} ${bad.param}`);
    const cus = await stripe.customers.create({ name: 'Webhook Judge' });
    const inv = await stripe.invoices.create({ customer: cus.id, collection_method: 'send_invoice', days_until_due: 30 });
    await stripe.invoiceItems.create({ customer: cus.id, invoice: inv.id, amount: 5000, description: 'Hooked' });
    await stripe.invoices.finalizeInvoice(inv.id);
    await stripe.invoices.pay(inv.id, { paid_out_of_band: true });
    // Deliveries go out as the sandbox clock moves.
    const adv = await (await fetch(`${BASE}/control/advance`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ days: 1 }),
    })).json();
    const mine = got.filter((g) => g.body.includes(inv.id));
    check(mine.length === 1, `one delivery of the invoice's event (${mine.length} of ${got.length})`);
    const { sig, body } = mine[0];
    // `t` is the sandbox clock's, not this machine's: widen the library's
    // 5-minute tolerance by the difference.
    const tolerance = Math.ceil(Math.abs(Date.now() - Date.parse(adv.now)) / 1000) + 300;
    const event = stripe.webhooks.constructEvent(body, sig, ep.secret, tolerance);
    check(event.type === 'invoice.paid' && event.data.object.id === inv.id, `${event.type}`);
    const tampered = Buffer.from(body.toString().replace('paid', 'PAID'));
    try {
      stripe.webhooks.constructEvent(tampered, sig, ep.secret, tolerance);
      fail('a tampered body must not verify');
    } catch (e) {
      check(e.type === 'StripeSignatureVerificationError', `got ${e.type}`);
    }
    const deleted = await stripe.webhookEndpoints.del(ep.id);
    check(deleted.deleted === true, 'deleted');
    return `${ep.id}: ${event.id} invoice.paid verified; tampered body -> StripeSignatureVerificationError`;
  } finally {
    server.close();
  }
});

await step('rate limit: 429', async () => {
  const other = new Stripe(creds.clients.at(-1).stripe.restricted_key, opts);
  const results = await Promise.allSettled(Array.from({ length: 60 }, () => other.customers.list({ limit: 1 })));
  const limited = results.filter((r) => r.status === 'rejected');
  check(limited.length > 0, '60 requests in a burst never met the rate limit');
  check(limited.every((r) => r.reason.type === 'StripeRateLimitError' && r.reason.statusCode === 429), 'StripeRateLimitError 429');
  check(results.length - limited.length >= 25, '25 allowed first');
  return `StripeRateLimitError on ${limited.length} of ${results.length}`;
});
console.log('stripe (node) judge passed');
