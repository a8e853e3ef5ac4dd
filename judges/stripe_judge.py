"""The official Python library (stripe==16.1.0, unchanged) judges the Stripe
simulator: reads, pagination, writes, card declines, idempotency, errors,
rate limiting, a report run whose CSV downloads, and a webhook endpoint whose
signed delivery `stripe.Webhook.construct_event` accepts. The library takes a path
prefix in its API base, so it talks to $SANDBOX_BASE/stripe. Each step
asserts and prints one line; the first failure exits non-zero.

Steps are a second apart: test mode allows 25 requests per second per
account and the simulator enforces it (the libraries do not retry a 429).
"""

import base64
import concurrent.futures
import datetime
import http.server
import threading
import json
import os
import sys
import time
import urllib.request

import stripe

BASE = os.environ["SANDBOX_BASE"].rstrip("/")


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def step(name, fn):
    try:
        detail = fn()
    except SystemExit:
        raise
    except Exception as e:  # anything unexpected is a failure of the step
        fail(f"{name}: {type(e).__name__}: {e}")
    print(f"ok   {name}: {detail}")
    time.sleep(1.05)


with urllib.request.urlopen(f"{BASE}/control/credentials") as r:
    creds = json.load(r)
client = creds["clients"][0]
KEY = client["stripe"]["restricted_key"]
ACCOUNT = client["stripe"]["account_id"]
PLATFORM_KEY = creds["stripe"]["secret_key"]
check(KEY.startswith("rk_test_"), "the credentials give an rk_test_ key")

stripe.api_base = f"{BASE}/stripe"
stripe.api_key = KEY
# Retries would hide the simulator's first answer.
stripe.max_network_retries = 0


def read():
    page = stripe.Customer.list(limit=2)
    check(page.object == "list" and len(page.data) == 2, "a page of 2 customers")
    check(page.url == "/v1/customers", f"list url {page.url}")
    first = page.data[0]
    got = stripe.Customer.retrieve(first.id)
    check(isinstance(got, stripe.Customer) and got.id == first.id, "retrieve gives the same customer")
    check(got.email == first.email, "same email")
    inv = stripe.Invoice.list(limit=1).data[0]
    again = stripe.Invoice.retrieve(inv.id)
    check(again.amount_remaining == again.amount_due - again.amount_paid, "amount_remaining = due - paid")
    check(again.status in ("draft", "open", "paid", "uncollectible", "void"), f"status {again.status}")
    return f"customer {got.id} ({got.name}), invoice {again.id} {again.status} {again.number}"


step("read: Customer.retrieve and Invoice.retrieve", read)


def paginate():
    first = stripe.Invoice.list(limit=3)
    check(first.has_more, "more than one page of invoices")
    second = stripe.Invoice.list(limit=3, starting_after=first.data[-1].id)
    check(second.data and second.data[0].id not in [i.id for i in first.data], "page 2 differs")
    ids, created = [], []
    for inv in stripe.Invoice.list(limit=3).auto_paging_iter():
        ids.append(inv.id)
        created.append(inv.created)
    check(len(ids) > 3 and len(set(ids)) == len(ids), f"auto-pagination saw {len(ids)} distinct")
    check(created == sorted(created, reverse=True), "newest first")
    check(ids[3] == second.data[0].id, "page 2 starts where auto-pagination's does")
    return f"{len(ids)} invoices over {-(-len(ids) // 3)} pages"


step("list: invoices to the second page and auto-pagination", paginate)


def writes():
    cus = stripe.Customer.create(email="judge@py.test", name="Python Judge", metadata={"source": "judge"})
    check(cus.id.startswith("cus_") and cus.metadata["source"] == "judge", "customer created with metadata")
    inv = stripe.Invoice.create(customer=cus.id, collection_method="send_invoice", days_until_due=30,
                                metadata={"order": "42"})
    check(inv.status == "draft", "a draft")
    stripe.InvoiceItem.create(customer=cus.id, invoice=inv.id, amount=12345, description="Consulting")
    inv = stripe.Invoice.finalize_invoice(inv.id)
    check(inv.status == "open" and inv.number, f"open with a number ({inv.status})")
    check(inv.amount_due == 12345 and inv.amount_remaining == 12345, "amount due")
    check(inv.due_date == inv.status_transitions.finalized_at + 30 * 86400, "due in 30 days")
    inv = stripe.Invoice.pay(inv.id, payment_method="pm_card_visa")
    check(inv.status == "paid" and inv.amount_paid == 12345 and inv.amount_remaining == 0, "paid")
    check(inv.status_transitions.paid_at is not None, "paid_at")
    check(inv.metadata["order"] == "42", "metadata kept")
    return f"{cus.id}; {inv.id} {inv.number} draft -> open -> paid"


step("write: create customer, create + finalize + pay an invoice", writes)


def payment():
    pi = stripe.PaymentIntent.create(amount=2000, currency="usd", payment_method="pm_card_visa",
                                     payment_method_types=["card"], confirm=True)
    check(pi.status == "succeeded" and pi.amount_received == 2000, f"succeeded ({pi.status})")
    ch = stripe.Charge.retrieve(pi.latest_charge)
    check(ch.status == "succeeded" and ch.paid, "the charge succeeded")
    txn = stripe.BalanceTransaction.retrieve(ch.balance_transaction)
    fee = round(2000 * 0.029) + 30
    check(txn.amount == 2000 and txn.fee == fee and txn.net == 2000 - fee, f"fee {txn.fee} net {txn.net}")
    check(txn.reporting_category == "charge" and txn.source == ch.id, "category and source")
    try:
        stripe.PaymentIntent.create(amount=2000, currency="usd", payment_method="pm_card_chargeDeclined",
                                    payment_method_types=["card"], confirm=True)
        fail("a declined card must raise")
    except stripe.CardError as e:
        check(e.http_status == 402, f"402 (got {e.http_status})")
        check(e.code == "card_declined", f"code {e.code}")
        check(e.error.decline_code == "generic_decline", f"decline_code {e.error.decline_code}")
        check(e.error.payment_intent.status == "requires_payment_method", "intent back to requires_payment_method")
        declined = e.error.decline_code
    return f"{pi.id} succeeded (fee {txn.fee}, net {txn.net}); declined: CardError {declined}"


step("write: PaymentIntent confirmed with pm_card_visa, one declined", payment)


def idempotency():
    key = f"judge-py-{time.time_ns()}"
    a = stripe.Customer.create(email="idem@py.test", idempotency_key=key)
    b = stripe.Customer.create(email="idem@py.test", idempotency_key=key)
    check(a.id == b.id, "the same key and parameters replay the first answer")
    check(b.last_response.headers.get("Idempotent-Replayed") == "true", "marked replayed")
    try:
        stripe.Customer.create(email="other@py.test", idempotency_key=key)
        fail("other parameters with the same key must fail")
    except stripe.IdempotencyError as e:
        check(e.http_status == 400, f"400 (got {e.http_status})")
    return f"replayed {a.id}; different parameters -> IdempotencyError"


step("idempotency: replay with an Idempotency-Key", idempotency)


def not_found():
    try:
        stripe.Invoice.retrieve("in_doesnotexist")
        fail("an unknown id must raise")
    except stripe.InvalidRequestError as e:
        check(e.http_status == 404 and e.code == "resource_missing", f"{e.http_status} {e.code}")
        check(e.request_id and e.request_id.startswith("req_"), "Request-Id")
        return f"InvalidRequestError 404 resource_missing ({e.request_id})"


step("error: 404", not_found)


def unauthorized():
    try:
        stripe.Customer.list(api_key="sk_test_notakey1234")
        fail("a bad key must raise")
    except stripe.AuthenticationError as e:
        check(e.http_status == 401, f"401 (got {e.http_status})")
        check("1234" in e.user_message and "notakey" not in e.user_message, "the key masked")
        return "AuthenticationError 401"


step("error: 401", unauthorized)


def connect():
    client = stripe.StripeClient(PLATFORM_KEY, base_addresses={"api": f"{BASE}/stripe"},
                                 stripe_account=ACCOUNT, max_network_retries=0)
    page = client.v1.customers.list(params={"limit": 1})
    mine = stripe.Customer.list(limit=1)
    check(page.data[0].id == mine.data[0].id, "the platform key with Stripe-Account sees the account")
    return f"StripeClient(platform key, stripe_account={ACCOUNT})"


step("auth: platform key scoped by Stripe-Account", connect)


def events_and_payouts():
    evs = stripe.Event.list(type="invoice.paid", limit=5)
    check(evs.data, "invoice.paid events")
    ev = evs.data[0]
    check(ev.data.object.object == "invoice" and ev.data.object.status == "paid", "a snapshot of the invoice")
    check(ev.data.previous_attributes["status"] == "open", "previous_attributes")
    paid = [p for p in stripe.Payout.list(limit=10).data if p.status == "paid"]
    check(paid, "paid payouts")
    po = paid[0]
    check(po.automatic and po.arrival_date >= po.created, "automatic, arriving after creation")
    txns = list(stripe.BalanceTransaction.list(payout=po.id, limit=100).auto_paging_iter())
    own = [t for t in txns if t.type == "payout"]
    others = [t for t in txns if t.type != "payout"]
    check(len(own) == 1 and own[0].amount == -po.amount, "the payout's own negative transaction")
    check(sum(t.net for t in others) == po.amount, "the payout's transactions add up")
    return f"{ev.id} invoice.paid; payout {po.id} {po.amount} = {len(others)} transactions"


step("events and payouts (?payout= filter)", events_and_payouts)


def report():
    kind = "balance_change_from_activity.itemized.3"
    rt = stripe.reporting.ReportType.retrieve(kind)
    run = stripe.reporting.ReportRun.create(report_type=kind, parameters={
        "interval_start": rt.data_available_start, "interval_end": rt.data_available_end})
    check(run.status == "pending", f"pending ({run.status})")
    for _ in range(10):
        time.sleep(1.1)
        run = stripe.reporting.ReportRun.retrieve(run.id)
        if run.status != "pending":
            break
    check(run.status == "succeeded" and run.result.url, f"succeeded ({run.status})")
    req = urllib.request.Request(run.result.url, headers={
        "Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()})
    with urllib.request.urlopen(req) as r:
        csv = r.read().decode()
    lines = csv.strip().split("\n")
    header = lines[0].split(",")
    check(header[:9] == ["balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on",
                         "currency", "gross", "fee", "net"], f"columns {header[:9]}")
    check(len(lines) > 1, "rows")
    row = dict(zip(header, lines[1].split(",")))
    txn = stripe.BalanceTransaction.retrieve(row["balance_transaction_id"])
    check(row["gross"] == f"{txn.amount / 100:.2f}" and row["net"] == f"{txn.net / 100:.2f}",
          f"decimal major units ({row['gross']} vs {txn.amount})")
    return f"{run.id} -> {run.result.id}: {len(lines) - 1} rows"


step("reporting: a report run whose CSV downloads", report)


def webhooks():
    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["Stripe-Signature"], body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook_url = f"http://127.0.0.1:{server.server_address[1]}/stripe-hooks"
        ep = stripe.WebhookEndpoint.create(url=hook_url, enabled_events=["invoice.paid"],
                                           description="judge")
        check(ep.secret and ep.secret.startswith("whsec_"), "the secret on create")
        again = stripe.WebhookEndpoint.retrieve(ep.id)
        check(again.url == hook_url and getattr(again, "secret", None) is None, "no secret after create")
        try:
            stripe.WebhookEndpoint.create(url=hook_url, enabled_events=["invoice.nope"])
            fail("an unknown event type must raise")
        except stripe.InvalidRequestError as e:
            check(e.http_status == 400 and e.param == "enabled_events[0]", f"{e.http_status} {e.param}")
        cus = stripe.Customer.create(name="Webhook Judge")
        inv = stripe.Invoice.create(customer=cus.id, collection_method="send_invoice", days_until_due=30)
        stripe.InvoiceItem.create(customer=cus.id, invoice=inv.id, amount=5000, description="Hooked")
        stripe.Invoice.finalize_invoice(inv.id)
        stripe.Invoice.pay(inv.id, paid_out_of_band=True)
        # Deliveries go out as the sandbox clock moves.
        req = urllib.request.Request(f"{BASE}/control/advance", data=json.dumps({"days": 1}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req) as r:
            sandbox_now = datetime.datetime.fromisoformat(json.load(r)["now"].replace("Z", "+00:00"))
        mine = [(sig, body) for sig, body in got if inv.id.encode() in body]
        check(len(mine) == 1, f"one delivery of the invoice's event ({len(mine)} of {len(got)})")
        sig, body = mine[0]
        # `t` is the sandbox clock's, which is not this machine's: widen the
        # library's 5-minute tolerance by the difference.
        skew = abs(time.time() - sandbox_now.timestamp())
        event = stripe.Webhook.construct_event(body, sig, ep.secret, tolerance=int(skew) + 300)
        check(event.type == "invoice.paid" and event.data.object.id == inv.id, f"{event.type}")
        try:
            stripe.Webhook.construct_event(body.replace(b"paid", b"PAID"), sig, ep.secret,
                                           tolerance=int(skew) + 300)
            fail("a tampered body must not verify")
        except stripe.SignatureVerificationError:
            pass
        deleted = stripe.WebhookEndpoint.delete(ep.id)
        check(deleted.deleted, "deleted")
        return f"{ep.id}: {event.id} invoice.paid verified; tampered body -> SignatureVerificationError"
    finally:
        server.shutdown()


step("webhooks: a signed invoice.paid delivery verifies with construct_event", webhooks)


def rate_limit():
    other = creds["clients"][-1]["stripe"]["restricted_key"]
    client = stripe.StripeClient(other, base_addresses={"api": f"{BASE}/stripe"}, max_network_retries=0)

    def one(_):
        try:
            client.v1.customers.list(params={"limit": 1})
            return None
        except stripe.RateLimitError as e:
            return e

    # A burst from several threads: more than 25 within the second.
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(one, range(60)))
    limited = [e for e in results if e is not None]
    check(limited, "60 requests in a burst never met the rate limit")
    check(all(e.http_status == 429 for e in limited), "429s")
    check(len(results) - len(limited) >= 25, f"25 allowed first ({len(results) - len(limited)})")
    return f"RateLimitError on {len(limited)} of {len(results)} burst requests ({limited[0].code})"


step("rate limit: 429", rate_limit)
print("stripe (python) judge passed")
