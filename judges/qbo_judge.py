"""The QuickBooks Online simulator judged by python-quickbooks (pinned in
judges/requirements.txt), used unchanged.

The library talks to Intuit's hosts (`QuickBooks.api_url_v3`); it is
pointed at the simulator by setting that attribute on the client, and given
an OAuth2 session holding the access token from
$SANDBOX_BASE/control/credentials (its `session` attribute), so the
intuitlib discovery document is never fetched. The simulator is plain HTTP,
which oauthlib refuses unless OAUTHLIB_INSECURE_TRANSPORT is set.

Each step asserts and prints one line; the first failure exits non-zero.
"""

import json
import os
import sys
import time
import urllib.request
import uuid
import warnings
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
warnings.simplefilter("ignore", DeprecationWarning)

from requests_oauthlib import OAuth2Session  # noqa: E402

from quickbooks import QuickBooks  # noqa: E402
from quickbooks.cdc import change_data_capture  # noqa: E402
from quickbooks.exceptions import (  # noqa: E402
    AuthorizationException,
    ObjectNotFoundException,
    QuickbooksException,
    ValidationException,
)
from quickbooks.objects.account import Account  # noqa: E402
from quickbooks.objects.base import LinkedTxn  # noqa: E402
from quickbooks.objects.bill import Bill  # noqa: E402
from quickbooks.objects.billpayment import (  # noqa: E402
    BillPayment,
    BillPaymentLine,
    CheckPayment,
)
from quickbooks.objects.company_info import CompanyInfo  # noqa: E402
from quickbooks.objects.customer import Customer  # noqa: E402
from quickbooks.objects.detailline import (  # noqa: E402
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.invoice import Invoice  # noqa: E402
from quickbooks.objects.payment import Payment, PaymentLine  # noqa: E402
from quickbooks.objects.vendor import Vendor  # noqa: E402

BASE = os.environ["SANDBOX_BASE"].rstrip("/")


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print(f"ok   {msg}")


def raises(fn, cls, what):
    """Run fn; it must raise exactly `cls`. Returns the exception."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the class is what is judged
        if type(e) is not cls:
            fail(f"{what}: raised {type(e).__name__} ({e}), wanted {cls.__name__}")
        return e
    fail(f"{what}: nothing raised, wanted {cls.__name__}")


class PacedSession(OAuth2Session):
    """Stays under QBO's 10 requests a second per realm (as a well-behaved
    app must); the throttle step uses an unpaced session."""

    gap = 0.12
    last = 0.0

    def request(self, *args, **kwargs):
        wait = self.last + self.gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            return super().request(*args, **kwargs)
        finally:
            PacedSession.last = time.monotonic()


def client(realm, token, session_cls=PacedSession):
    qb = QuickBooks(company_id=realm, minorversion=75)
    qb.api_url_v3 = f"{BASE}/qbo/v3"
    qb.session = session_cls("rowcol-judge", token={"access_token": token, "token_type": "Bearer"})
    return qb


def dec(x):
    return round(float(x), 2)


with urllib.request.urlopen(f"{BASE}/control/credentials") as r:
    creds = json.load(r)
first = creds["clients"][0]["qbo"]
realm, token = first["realm_id"], first["access_token"]
check(bool(realm) and bool(token), f"credentials: realm {realm} with an access token")
qb = client(realm, token)

# --- reads
info = CompanyInfo.get(realm, qb=qb)
check(info.Id == realm and info.CompanyName, f"CompanyInfo.get: {info.CompanyName}")
zone = getattr(info, "DefaultTimeZone", "")
stamp = info.MetaData["CreateTime"] if isinstance(info.MetaData, dict) else info.MetaData.CreateTime
check(bool(zone) and stamp[-6] in "+-", f"CompanyInfo: time zone {zone}, local times with offset ({stamp})")
now_text = qb.query("SELECT * FROM CompanyInfo")["time"]
now = datetime.fromisoformat(now_text)
created = datetime.fromisoformat(stamp)
check(
    all(t.utcoffset() == t.astimezone(ZoneInfo(zone)).utcoffset() for t in (now, created)),
    f"times local to {zone}: answer time {now_text}, CreateTime {stamp}",
)

vendors = Vendor.all(qb=qb)
check(len(vendors) >= 1, f"Vendor.all: {len(vendors)} vendors")
v0 = Vendor.get(vendors[0].Id, qb=qb)
check(v0.DisplayName == vendors[0].DisplayName, f"Vendor.get {v0.Id}: {v0.DisplayName}")

projected = qb.query("select Id, DisplayName from Vendor")["QueryResponse"]["Vendor"]
check(
    all(set(v) == {"Id", "DisplayName"} for v in projected),
    f"query projection: {len(projected)} vendors with Id and DisplayName only",
)
e = raises(lambda: Vendor.where("Id != '1'", qb=qb), ValidationException, "query with !=")
check(e.error_code == 4000, f"query with != refused: code {e.error_code}")

# --- paging
total = Bill.count(qb=qb)
check(total >= 3, f"Bill.count: {total}")
page1 = Bill.filter(start_position=1, max_results=2, order_by="Id", qb=qb)
page2 = Bill.filter(start_position=3, max_results=2, order_by="Id", qb=qb)
ids1, ids2 = [b.Id for b in page1], [b.Id for b in page2]
check(len(ids1) == 2 and len(ids2) >= 1 and not set(ids1) & set(ids2), f"Bill pages: {ids1} then {ids2}")
all_ids = [b.Id for b in Bill.all(order_by="Id", max_results=1000, qb=qb)]
check(all_ids[:2] == ids1 and all_ids[2 : 2 + len(ids2)] == ids2, "Bill.all agrees with the pages")

# --- BillPayment create (what RowCol records), with requestid replay
open_bills = [b for b in Bill.all(max_results=1000, qb=qb) if dec(b.Balance) > 0]
check(len(open_bills) > 0, f"{len(open_bills)} open bills")
bill = Bill.get(open_bills[0].Id, qb=qb)
check(bill.Id == open_bills[0].Id and dec(bill.Balance) > 0, f"Bill.get {bill.Id}: balance {bill.Balance}")
bank = Account.filter(AccountType="Bank", qb=qb)
check(len(bank) >= 1, f"bank account {bank[0].Name}")

pay_amt = min(dec(bill.Balance), 10.0)


def new_bill_payment():
    bp = BillPayment()
    bp.PayType = "Check"
    bp.TotalAmt = pay_amt
    bp.VendorRef = bill.VendorRef
    bp.CheckPayment = CheckPayment()
    bp.CheckPayment.BankAccountRef = bank[0].to_ref()
    line = BillPaymentLine()
    line.Amount = pay_amt
    lt = LinkedTxn()
    lt.TxnId = bill.Id
    lt.TxnType = "Bill"
    line.LinkedTxn = [lt]
    bp.Line = [line]
    bp.PrivateNote = "RowCol judge"
    return bp


request_id = str(uuid.uuid4())
bp = new_bill_payment().save(qb=qb, request_id=request_id)
after = Bill.get(bill.Id, qb=qb)
check(
    bp.Id and bp.SyncToken == "0" and dec(after.Balance) == round(dec(bill.Balance) - pay_amt, 2),
    f"BillPayment create {bp.Id}: bill {bill.Id} balance {bill.Balance} -> {after.Balance}",
)
again = new_bill_payment().save(qb=qb, request_id=request_id)
still = Bill.get(bill.Id, qb=qb)
check(again.Id == bp.Id and dec(still.Balance) == dec(after.Balance), "same requestid: same BillPayment, applied once")

# --- sparse update of PrivateNote, stale SyncToken, full update
cur = BillPayment.get(bp.Id, qb=qb)
cur.sparse = True
cur.PrivateNote = "RowCol judge: paid via Ramp"
upd = cur.save(qb=qb)
check(upd.SyncToken == "1" and upd.PrivateNote == "RowCol judge: paid via Ramp", f"sparse update: SyncToken {upd.SyncToken}")
e = raises(lambda: cur.save(qb=qb), QuickbooksException, "update at a stale SyncToken")
check(e.error_code == 5010, f"stale SyncToken refused: code {e.error_code}")
full = BillPayment.get(bp.Id, qb=qb)
full.sparse = False
full.DocNumber = "J-1"
full.PrivateNote = ""
done = full.save(qb=qb)
check(
    done.SyncToken == "2" and done.DocNumber == "J-1" and not getattr(done, "PrivateNote", None)
    and dec(done.TotalAmt) == pay_amt,
    "full update: DocNumber set, the emptied PrivateNote cleared, lines kept",
)

# --- A/R: customer, invoice, payment (lowers the invoice's balance), void
cust = Customer()
cust.DisplayName = f"Judge Customer {uuid.uuid4().hex[:8]}"
cust = cust.save(qb=qb)
check(bool(cust.Id), f"Customer create {cust.Id}")
dup = Customer()
dup.DisplayName = cust.DisplayName
e = raises(lambda: dup.save(qb=qb), QuickbooksException, "duplicate DisplayName")
check(e.error_code == 6240, f"duplicate name refused: code {e.error_code}")

inv = Invoice()
inv.CustomerRef = cust.to_ref()
line = SalesItemLine()
line.Amount = 100.0
line.Description = "Bookkeeping, November"
line.SalesItemLineDetail = SalesItemLineDetail()
inv.Line = [line]
inv = inv.save(qb=qb)
check(dec(inv.TotalAmt) == 100.0 and dec(inv.Balance) == 100.0, f"Invoice create {inv.Id}: 100.00 open")

pmt = Payment()
pmt.CustomerRef = cust.to_ref()
pmt.TotalAmt = 40.0
pl = PaymentLine()
pl.Amount = 40.0
lt = LinkedTxn()
lt.TxnId = inv.Id
lt.TxnType = "Invoice"
pl.LinkedTxn = [lt]
pmt.Line = [pl]
pmt = pmt.save(qb=qb)
inv_after = Invoice.get(inv.Id, qb=qb)
check(dec(inv_after.Balance) == 60.0, f"Payment create {pmt.Id}: invoice balance {inv_after.Balance}")
Payment.get(pmt.Id, qb=qb).void(qb=qb)
inv_void = Invoice.get(inv.Id, qb=qb)
voided = Payment.get(pmt.Id, qb=qb)
check(dec(inv_void.Balance) == 100.0 and dec(voided.TotalAmt) == 0, "Payment void: invoice open again, payment zeroed")

# --- delete a BillPayment: the bill's balance comes back; then it is gone
BillPayment.get(bp.Id, qb=qb).delete(qb=qb)
restored = Bill.get(bill.Id, qb=qb)
check(dec(restored.Balance) == dec(bill.Balance), f"BillPayment delete: bill balance back to {restored.Balance}")
e = raises(lambda: BillPayment.get(bp.Id, qb=qb), ObjectNotFoundException, "read of a deleted BillPayment")
check(e.error_code == 610, f"object not found: code {e.error_code}")

# --- CDC through the library's helper
since = (now - timedelta(hours=1)).isoformat()
cdc = change_data_capture([BillPayment, Invoice, Payment, Vendor], since, qb=qb)
bps = list(getattr(cdc, "BillPayment", []))
gone = [b for b in bps if b.Id == bp.Id]
check(len(gone) == 1 and getattr(gone[0], "status", "") == "Deleted", f"CDC: BillPayment {bp.Id} Deleted")
invs = [i.Id for i in getattr(cdc, "Invoice", [])]
check(inv.Id in invs, f"CDC: invoice {inv.Id} changed")
old = (now - timedelta(days=31)).isoformat()
e = raises(lambda: change_data_capture([Bill], old, qb=qb), ValidationException, "CDC 31 days back")
check(e.error_code == 2010, f"CDC lookback beyond 30 days refused: code {e.error_code}")

# --- 401
bad = client(realm, "not-a-token")
e = raises(lambda: Vendor.get(v0.Id, qb=bad), AuthorizationException, "bad token")
check(e.error_code == 401, f"bad token: AuthorizationException ({e.error_code})")

# --- throttling: more than 10 requests in a second
time.sleep(1.1)
fast = client(realm, token, session_cls=OAuth2Session)
hit = None
for i in range(40):
    try:
        CompanyInfo.get(realm, qb=fast)
    except Exception as e:  # noqa: BLE001 - the class is what is judged
        hit = (i, e)
        break
if hit is None:
    fail("40 requests in a burst: no 429")
i, e = hit
check(
    type(e) is ValidationException and e.error_code == 3001 and i >= 9,
    f"throttled after {i} requests: {type(e).__name__} code {e.error_code}",
)
time.sleep(1.1)
check(CompanyInfo.get(realm, qb=qb).Id == realm, "after a second's pause requests are served again")
print("qbo judge: all steps passed")
