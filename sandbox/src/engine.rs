//! The payment engine (what Ramp does on the arrival date, plus the effects
//! Ramp's accounting sync and the bank produce) and webhook delivery (Ramp's,
//! Plaid's, QBO's and Stripe's, one queue).

use crate::sim_state::*;
use crate::Sandbox;
use chrono::{Duration, NaiveTime};
use clock::Clock;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const WEBHOOK_MAX_ATTEMPTS: u32 = 10;

/// When a paid bill's money moves on its arrival date (15:00 UTC), checked at
/// compile time.
const THREE_PM: NaiveTime = match NaiveTime::from_hms_opt(15, 0, 0) {
    Some(t) => t,
    None => panic!("a valid time"),
};

/// Hex HMAC-SHA256 of the exact body bytes, as Ramp signs webhooks.
pub fn sign_ramp_webhook(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Backoff before attempt `attempts + 1`: 30 s, 1 min, 2 min, … capped at
/// 6 h, measured on the sandbox clock.
fn backoff(attempts: u32) -> Duration {
    let secs = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(20));
    Duration::seconds(secs.min(6 * 3600))
}

/// Whether the engine still owes this bill its payment (OPEN, not
/// archived — its payment was cancelled — and not returned: a returned bill
/// is OPEN again but Ramp does not retry it).
fn payable(b: &RampBillRec) -> bool {
    b.status == RampStatus::Open && b.archived_at.is_none() && b.ach_return.is_none()
}

/// The day an ACH bill's debit leaves the client's bank: `ach_lead`
/// business days before the arrival date, never before the bill was made.
pub(crate) fn debit_day(b: &RampBillRec) -> chrono::NaiveDate {
    sub_business_days(b.payment_arrival_date, b.ach_lead).max(b.created_at.date_naive())
}

/// Send the money of every OPEN ACH bill whose debit day has come but whose
/// arrival date has not: the bank shows the debit and Ramp's accounting
/// sync writes the QBO BillPayment now, days before Ramp marks the bill
/// PAID (ACH takes 1–3 business days to reach the vendor, and Ramp sends it
/// so that it arrives on the arrival date). A client reading the three
/// rails sees the evidence out of order. Returns how many.
pub fn debit_due_ach(st: &mut SimState, clock: &Clock) -> usize {
    let today = clock.today();
    let mut sent = 0;
    for ci in 0..st.clients.len() {
        for bi in 0..st.clients[ci].ramp.bills.len() {
            let b = &st.clients[ci].ramp.bills[bi];
            if !payable(b) || b.debited_on.is_some() || b.payment_method != "ACH" {
                continue;
            }
            let on = debit_day(b);
            if on > today || on >= b.payment_arrival_date {
                continue;
            }
            send_money(st, ci, bi, on, clock.now());
            sent += 1;
        }
    }
    sent
}

/// Pay every OPEN Ramp bill whose arrival date has come. Returns how many.
pub fn pay_due_bills(st: &mut SimState, clock: &Clock) -> usize {
    let today = clock.today();
    let now = clock.now();
    let mut paid = 0;
    for ci in 0..st.clients.len() {
        for bi in 0..st.clients[ci].ramp.bills.len() {
            let b = &st.clients[ci].ramp.bills[bi];
            if !payable(b) || b.payment_arrival_date > today {
                continue;
            }
            let arrival = b.payment_arrival_date;
            // Without a lead (other methods, or a debit day that is the
            // arrival date) the money moves now.
            if b.debited_on.is_none() {
                send_money(st, ci, bi, arrival, now);
            }
            let seq = st.next_seq();
            let bill = &mut st.clients[ci].ramp.bills[bi];
            let at_three = arrival.and_time(THREE_PM).and_utc();
            bill.status = RampStatus::Paid;
            bill.paid_at = Some(at_three.min(now));
            bill.payment_date = Some(arrival);
            bill.trace_id = Some(format!("0210000{seq:08}"));
            let bill = bill.clone();
            paid += 1;

            // The vendor's bank may send the debit back later.
            if bill.payment_method == "ACH" && !st.faults.ramp_ach_return_next.is_empty() {
                let reason = st.faults.ramp_ach_return_next.remove(0);
                let due = add_business_days(arrival, return_lag(st.seed, seq));
                st.ach_returns_due.push(AchReturnDue {
                    client: ci,
                    bill_id: bill.id.clone(),
                    reason,
                    due,
                });
            }

            // And the bills.paid webhook, to every subscription that wants it.
            let business_id = st.clients[ci].ramp.business_id.clone();
            queue_event(st, &business_id, "bills.paid", &bill.id, now);
        }
    }
    paid
}

/// The money of bill `bi` leaves the client's bank on `on`: Ramp's
/// accounting sync writes a QBO BillPayment (subject to the QBO faults) and
/// the bank shows the outflow on the Plaid item.
fn send_money(
    st: &mut SimState,
    ci: usize,
    bi: usize,
    on: chrono::NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) {
    let today = now.date_naive();
    let bill = &mut st.clients[ci].ramp.bills[bi];
    bill.debited_on = Some(on);
    let bill = bill.clone();
    let vendor = st.clients[ci]
        .ramp
        .vendors
        .iter()
        .find(|v| v.id == bill.vendor_id)
        .cloned();

    // Ramp's accounting sync: a BillPayment in QBO.
    if st.faults.qbo_skip_next > 0 {
        st.faults.qbo_skip_next -= 1;
    } else if let Some(v) = &vendor {
        let extra = if st.faults.qbo_amount_mismatch_next > 0 {
            st.faults.qbo_amount_mismatch_next -= 1;
            100
        } else {
            0
        };
        if st.faults.qbo_late_next > 0 {
            st.faults.qbo_late_next -= 1;
            st.qbo_late.push(LateQboRecord {
                client: ci,
                due: today + Duration::days(QBO_LATE_DAYS),
                bill: bill.clone(),
                vendor: v.clone(),
                extra_cents: extra,
            });
        } else {
            record_in_qbo(&mut st.clients[ci].qbo, &bill, v, extra, now);
        }
    }

    // The bank: an outflow on the Plaid item.
    let vname = vendor.as_ref().map(|v| v.name.as_str()).unwrap_or("VENDOR");
    let txn_id = format!("rampbp{}", bill.id.replace('-', ""));
    let pending = st.faults.plaid_debits_pending_first;
    let client = &mut st.clients[ci];
    client.plaid.txns.push(PlaidTxnRec {
        id: txn_id,
        amount_cents: bill.amount_cents,
        date: on,
        name: format!("RAMP BILLPAY {}", vname.to_uppercase()),
        pending,
        pending_transaction_id: None,
        removal: false,
        modification: false,
        authorized_date: None,
        in_store: false,
    });
    client.plaid.account.available_cents -= bill.amount_cents;
    // A pending debit holds `available`; `current` moves when it posts.
    if !pending {
        client.plaid.account.current_cents -= bill.amount_cents;
    }
}

/// `d` less `n` business days (weekends skipped).
fn sub_business_days(mut d: chrono::NaiveDate, n: u32) -> chrono::NaiveDate {
    use chrono::Datelike;
    let mut left = n;
    while left > 0 {
        d -= Duration::days(1);
        if !matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
            left -= 1;
        }
    }
    d
}

/// How many business days (1–3) before its arrival date an ACH bill's
/// debit leaves the bank, from the world's seed and the bill's place in the
/// engine's sequence (Ramp's ids are random; a replayed seed must see the
/// same debit on the same day).
pub(crate) fn ach_lead(seed: u64, seq: u64) -> u32 {
    let h = (seed.rotate_left(7) ^ seq.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
        .wrapping_mul(0x0100_0000_01b3);
    1 + ((h >> 23) % 3) as u32
}

/// `d` plus `n` business days (weekends skipped; the sandbox knows no bank
/// holidays).
fn add_business_days(mut d: chrono::NaiveDate, n: u32) -> chrono::NaiveDate {
    use chrono::Datelike;
    let mut left = n;
    while left > 0 {
        d += Duration::days(1);
        if !matches!(d.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
            left -= 1;
        }
    }
    d
}

/// How many business days (2–4) after Ramp's PAID an injected return
/// comes back: fixed by the world's seed and the payment, so a seed replays.
fn return_lag(seed: u64, seq: u64) -> u32 {
    // From the world's seed and the payment's place in the engine's
    // sequence, not the bill's id: Ramp's ids are random, and a replayed
    // seed must see the same return on the same day.
    let h = (seed ^ seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0x0100_0000_01b3);
    2 + ((h >> 17) % 3) as u32
}

/// The words the bank prints after a NACHA return code.
fn return_words(reason: &str) -> &'static str {
    match reason {
        "R01" => "INSUFFICIENT FUNDS",
        "R02" => "ACCOUNT CLOSED",
        "R03" => "NO ACCOUNT",
        "R04" => "INVALID ACCOUNT NUMBER",
        "R16" => "ACCOUNT FROZEN",
        _ => "RETURNED",
    }
}

/// Return every scheduled ACH debit whose day has come. Returns how many.
pub fn return_due_ach(st: &mut SimState, today: chrono::NaiveDate) -> usize {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut st.ach_returns_due)
        .into_iter()
        .partition(|r| r.due <= today);
    st.ach_returns_due = later;
    let mut n = 0;
    for r in due {
        if return_ach(st, r.client, &r.bill_id, &r.reason, r.due).is_some() {
            n += 1;
        }
    }
    n
}

/// What a returned ACH debit looks like on the rails, dated `on`: the bank
/// credits the amount back (a Plaid transaction with a negative amount,
/// Plaid's sign for money in; `available` and `current` restored) and the
/// Ramp bill is OPEN again with `paid_at` null.
///
/// Ramp's API documents no returned or failed status for a bill (rails.md
/// §2.4), and for a payment that could not be funded it keeps the bill
/// OPEN and emits nothing (rails.md §6). We take that least forgiving
/// documented shape: no webhook, no return code on the bill — a client
/// learns of the return from the bank, or from a PAID bill that is OPEN
/// again. The QBO BillPayment Ramp's accounting sync wrote stays: Ramp
/// documents no reversal of it. Returns the bank transaction's id, or
/// `None` if the bill is not a paid, unreturned ACH bill.
pub(crate) fn return_ach(
    st: &mut SimState,
    ci: usize,
    bill_id: &str,
    reason: &str,
    on: chrono::NaiveDate,
) -> Option<String> {
    let client = st.clients.get_mut(ci)?;
    let bill = client.ramp.bills.iter_mut().find(|b| b.id == bill_id)?;
    if bill.status != RampStatus::Paid || bill.payment_method != "ACH" || bill.ach_return.is_some()
    {
        return None;
    }
    bill.status = RampStatus::Open;
    bill.paid_at = None;
    bill.payment_date = None;
    bill.ach_return = Some(reason.to_owned());
    let (amount, vendor_id) = (bill.amount_cents, bill.vendor_id.clone());
    let vname = client
        .ramp
        .vendors
        .iter()
        .find(|v| v.id == vendor_id)
        .map(|v| v.name.to_uppercase())
        .unwrap_or_else(|| "VENDOR".to_owned());
    let txn_id = format!("achret{}", bill_id.replace('-', ""));
    client.plaid.txns.push(PlaidTxnRec::posted(
        txn_id.clone(),
        -amount,
        on,
        format!("ACH RETURN {reason} {} {vname}", return_words(reason)),
    ));
    client.plaid.account.available_cents += amount;
    client.plaid.account.current_cents += amount;
    Some(txn_id)
}

/// Queue `event_type` about `object_id` to every active subscription of the
/// business that lists the type (one event id, one delivery per
/// subscription). The webhook faults (drop, delay) apply per delivery. No
/// subscription, no delivery.
pub(crate) fn queue_event(
    st: &mut SimState,
    business_id: &str,
    event_type: &str,
    object_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) {
    let subs: Vec<String> = st
        .ramp_webhook_subs
        .subs
        .iter()
        .filter(|s| {
            s.business_id == business_id
                && s.status == "active"
                && s.event_types.iter().any(|t| t == event_type)
        })
        .map(|s| s.id.clone())
        .collect();
    if subs.is_empty() {
        return;
    }
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "id": event_id,
        "type": event_type,
        "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "business_id": business_id,
        "object": {"id": object_id},
    })
    .to_string();
    for sub in subs {
        let (status, next_attempt_at) = injected_fate(st, now);
        st.webhooks.push(WebhookRec {
            event_id: event_id.clone(),
            business_id: business_id.to_owned(),
            body: body.clone(),
            attempts: 0,
            next_attempt_at,
            status,
            last_http_status: None,
            subscription_id: Some(sub),
            in_flight: false,
            rail: WebhookRail::Ramp,
            item_id: None,
            url: None,
        });
    }
}

/// What the webhook faults do to one delivery queued `now` (any rail's):
/// its status (dropped, or pending) and its first attempt's time (a day
/// late: behind events that come after it). Consumes the faults it uses.
pub(crate) fn injected_fate(
    st: &mut SimState,
    now: chrono::DateTime<chrono::Utc>,
) -> (WebhookStatus, chrono::DateTime<chrono::Utc>) {
    let status = if st.faults.webhook_drop_next > 0 {
        st.faults.webhook_drop_next -= 1;
        WebhookStatus::Dropped
    } else {
        WebhookStatus::Pending
    };
    let next_attempt_at = if st.faults.webhook_delay_next > 0 {
        st.faults.webhook_delay_next -= 1;
        now + Duration::days(1)
    } else {
        now
    };
    (status, next_attempt_at)
}

/// How many days [`Faults::qbo_late_next`](crate::Faults) holds a payment
/// back from QBO.
const QBO_LATE_DAYS: i64 = 3;

/// Record in QBO the paid bills whose accounting sync was held back and
/// whose day has come. Returns how many.
pub fn record_late_in_qbo(st: &mut SimState, now: chrono::DateTime<chrono::Utc>) -> usize {
    let today = now.date_naive();
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut st.qbo_late)
        .into_iter()
        .partition(|r| r.due <= today);
    st.qbo_late = later;
    for r in &due {
        if let Some(c) = st.clients.get_mut(r.client) {
            record_in_qbo(&mut c.qbo, &r.bill, &r.vendor, r.extra_cents, now);
        }
    }
    due.len()
}

/// Resolve every pending debit dated before `today`, in its latest form
/// (after any modification): it posts (a new transaction, dated the day
/// after, authorized on the pending one's date, carrying
/// `pending_transaction_id`) or, when `plaid_drop_pending_next` says so, a
/// bill-pay debit falls off (a removal entry, the hold released); a card
/// purchase always posts. Returns how many were resolved.
pub fn settle_pending_debits(st: &mut SimState, today: chrono::NaiveDate) -> usize {
    let mut settled = 0;
    for ci in 0..st.clients.len() {
        let log = &st.clients[ci].plaid.txns;
        let resolved: std::collections::HashSet<&str> = log
            .iter()
            .filter_map(|t| {
                if t.removal {
                    Some(t.id.as_str())
                } else {
                    t.pending_transaction_id.as_deref()
                }
            })
            .collect();
        // A pending transaction's latest form (its last modification), in
        // the order the pending ones first appeared.
        let mut due: Vec<PlaidTxnRec> = Vec::new();
        for t in log.iter().filter(|t| t.pending && !t.removal) {
            if resolved.contains(t.id.as_str()) || t.date >= today {
                continue;
            }
            match due.iter_mut().find(|d| d.id == t.id) {
                Some(d) => *d = t.clone(),
                None => due.push(t.clone()),
            }
        }
        for p in due {
            // The fault is about bill-pay debits; a card purchase posts.
            let drop = st.faults.plaid_drop_pending_next > 0 && !p.in_store;
            if drop {
                st.faults.plaid_drop_pending_next -= 1;
            }
            let item = &mut st.clients[ci].plaid;
            if drop {
                item.account.available_cents += p.amount_cents;
                item.txns.push(PlaidTxnRec {
                    removal: true,
                    modification: false,
                    ..p
                });
            } else {
                item.account.current_cents -= p.amount_cents;
                item.txns.push(PlaidTxnRec {
                    id: format!("{}posted", p.id),
                    date: p.date + Duration::days(1),
                    pending: false,
                    pending_transaction_id: Some(p.id.clone()),
                    removal: false,
                    modification: false,
                    authorized_date: Some(p.date),
                    ..p
                });
            }
            settled += 1;
        }
    }
    settled
}

/// Record a Ramp payment as a QBO BillPayment against the open bill with the
/// same vendor and DocNumber == invoice number (if there is one).
fn record_in_qbo(
    realm: &mut QboRealm,
    bill: &RampBillRec,
    vendor: &RampVendorRec,
    extra_cents: i64,
    now: chrono::DateTime<chrono::Utc>,
) {
    let Some(qi) = realm.bills.iter().position(|b| {
        b.vendor_id == vendor.accounting_vendor_remote_id
            && b.doc_number == bill.invoice_number
            && b.balance_cents > 0
    }) else {
        return;
    };
    let amount = bill.amount_cents + extra_cents;
    let bank = realm
        .account_named("Checking")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let id = realm.take_id();
    let qb = &mut realm.bills[qi];
    qb.balance_cents = (qb.balance_cents - amount).max(0);
    qb.sync_token += 1;
    qb.updated = now;
    let bill_id = qb.id.clone();
    realm.bill_payments.push(QboBillPayment {
        id,
        vendor_id: vendor.accounting_vendor_remote_id.clone(),
        txn_date: bill.debited_on.unwrap_or(bill.payment_arrival_date),
        total_cents: amount,
        bank_account_id: bank,
        private_note: Some(format!("Ramp bill {} ({})", bill.id, bill.invoice_number)),
        doc_number: None,
        lines: vec![QboPaymentLine {
            amount_cents: amount,
            bill_id,
        }],
        sync_token: 0,
        created: now,
        updated: now,
    });
}

enum Outcome {
    Delivered(u16),
    Retry(Option<u16>),
    Fail(u16),
}

/// Where and how one delivery goes.
enum Target {
    /// To a Ramp subscription's endpoint, HMAC-signed with its secret.
    Ramp {
        url: String,
        secret: String,
        extra_headers: Vec<(String, String)>,
    },
    /// To a Plaid Item's webhook URL, with a JWT made with the current key.
    Plaid { url: String, key: PlaidWebhookKey },
    /// To the QBO app's webhook URL, `intuit-signature` with its verifier.
    Qbo { url: String, verifier: String },
    /// To a Stripe webhook endpoint, `Stripe-Signature` with its secret.
    Stripe { url: String, secret: String },
}

impl Target {
    fn url(&self) -> &str {
        match self {
            Target::Ramp { url, .. }
            | Target::Plaid { url, .. }
            | Target::Qbo { url, .. }
            | Target::Stripe { url, .. } => url,
        }
    }
}

/// The headers the simulator sets itself; `additional_headers` cannot
/// replace them.
const OWN_HEADERS: [&str; 4] = [
    "content-type",
    "x-ramp-webhook-signature",
    "x-ramp-signature",
    "x-ramp-webhook-id",
];

/// One attempt. `body` is the stored bytes, sent exactly as signed.
async fn send_once(sb: &Sandbox, target: &Target, body: &str, event_id: &str) -> Outcome {
    let mut req = sb.inner.http.post(target.url());
    match target {
        Target::Ramp {
            secret,
            extra_headers,
            ..
        } => {
            let sig = sign_ramp_webhook(secret.as_bytes(), body.as_bytes());
            for (k, v) in extra_headers {
                if !OWN_HEADERS.contains(&k.to_ascii_lowercase().as_str()) {
                    req = req.header(k, v);
                }
            }
            req = req
                .header("X-Ramp-Webhook-Signature", &sig)
                .header("X-Ramp-Signature", &sig)
                .header("X-Ramp-Webhook-ID", event_id);
        }
        Target::Plaid { key, .. } => {
            // `iat` is the moment of this attempt, on the wall clock: the
            // receiver compares it with its own time (5 minutes), which the
            // sandbox clock knows nothing of.
            let iat = chrono::Utc::now().timestamp();
            match crate::plaid_webhooks::sign(key, body.as_bytes(), iat) {
                Ok(jwt) => req = req.header("Plaid-Verification", jwt),
                Err(e) => {
                    tracing::error!(error = %e, "plaid webhook signing failed");
                    return Outcome::Retry(None);
                }
            }
        }
        Target::Qbo { verifier, .. } => {
            let sig = crate::qbo_webhooks::sign(verifier.as_bytes(), body.as_bytes());
            req = req.header("intuit-signature", sig);
        }
        Target::Stripe { secret, .. } => {
            // `t` is the moment of this attempt on the wall clock, as Stripe
            // signs: a receiver with Stripe's 300-second tolerance compares
            // it with its own time, which the sandbox clock (advanced by
            // days in a demo) knows nothing of.
            let t = chrono::Utc::now().timestamp();
            let sig = crate::stripe::webhooks::signature(secret, t, body);
            req = req.header("Stripe-Signature", sig);
        }
    }
    let res = req
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await;
    match (target, res) {
        (Target::Ramp { .. }, Ok(r)) => {
            let s = r.status().as_u16();
            match s {
                200..=299 => Outcome::Delivered(s),
                429 | 500..=599 => Outcome::Retry(Some(s)),
                _ => Outcome::Fail(s),
            }
        }
        // Plaid documents a retry for any non-200 answer.
        (Target::Plaid { .. }, Ok(r)) => match r.status().as_u16() {
            200 => Outcome::Delivered(200),
            s => Outcome::Retry(Some(s)),
        },
        // Intuit asks for a 200 and retries anything else.
        // Stripe: only a 2xx counts; anything else is retried.
        (Target::Qbo { .. } | Target::Stripe { .. }, Ok(r)) => match r.status().as_u16() {
            s @ 200..=299 => Outcome::Delivered(s),
            s => Outcome::Retry(Some(s)),
        },
        (_, Err(_)) => Outcome::Retry(None),
    }
}

/// Plaid's retries: the first 30 s after the first failure, each later one
/// 4× the one before, for as long as they stay within 24 h of the first
/// attempt. The delay before the next attempt after `attempts` failed
/// ones, or `None` once the 24 h are used up.
pub(crate) fn plaid_backoff(attempts: u32) -> Option<Duration> {
    const WINDOW_SECS: i64 = 24 * 3600;
    let mut elapsed = 0i64;
    let mut delay = 30i64;
    for _ in 1..attempts {
        elapsed = elapsed.saturating_add(delay);
        delay = delay.saturating_mul(4);
    }
    (elapsed.saturating_add(delay) <= WINDOW_SECS).then(|| Duration::seconds(delay))
}

/// Where a due delivery goes: `None` if it has nowhere to go any more
/// (its subscription was deleted), `Some(None)` if it must wait (no URL or
/// no key yet).
fn target_of(st: &SimState, cfg: &crate::SandboxConfig, w: &WebhookRec) -> Option<Option<Target>> {
    if w.rail == WebhookRail::Qbo {
        let url = w.url.clone().unwrap_or_default();
        let verifier = cfg.qbo_webhook_verifier.expose().to_owned();
        return Some((!url.is_empty()).then_some(Target::Qbo { url, verifier }));
    }
    if w.rail == WebhookRail::Stripe {
        let endpoint = w.subscription_id.as_deref().unwrap_or("");
        let (url, secret) = crate::stripe::webhooks::target(st, &w.business_id, endpoint)?;
        return Some(Some(Target::Stripe { url, secret }));
    }
    if w.rail == WebhookRail::Plaid {
        let url = w.url.clone().unwrap_or_default();
        let key = crate::plaid_webhooks::current_key(st).cloned();
        return Some(match key {
            Some(key) if !url.is_empty() => Some(Target::Plaid { url, key }),
            _ => None,
        });
    }
    let t = match &w.subscription_id {
        None => Target::Ramp {
            url: cfg.ramp_webhook_url.clone(),
            secret: cfg.ramp_webhook_secret.expose().to_owned(),
            extra_headers: Vec::new(),
        },
        Some(id) => {
            let s = st.ramp_webhook_subs.subs.iter().find(|s| s.id == *id)?;
            Target::Ramp {
                url: s.endpoint_url.clone(),
                secret: s.secret.clone(),
                extra_headers: s.additional_headers.clone(),
            }
        }
    };
    Some((!t.url().is_empty()).then_some(t))
}

/// Deliver every pending webhook whose time has come: Ramp's to their
/// subscription's endpoint signed with its secret (deliveries queued before
/// subscriptions existed: the configured URL and secret), Plaid's to the
/// URL they were queued for with a JWT made with the current key. A Ramp
/// delivery whose subscription was deleted fails without being sent; one
/// with no URL stays queued. The state lock is not held while HTTP is
/// awaited (RowCol's handler may run in this process).
pub async fn deliver_due(sb: &Sandbox) -> usize {
    let now = sb.inner.clock.now();
    let cfg = &sb.inner.config;
    let (due, duplicate) = {
        let mut guard = sb.inner.state.lock().await;
        let st = &mut *guard;
        // QBO's news since the last round (every writer's changes).
        let queued_qbo = crate::qbo_webhooks::note_changes(
            st,
            &cfg.qbo_webhook_url,
            cfg.qbo_webhook_format,
            now,
        );
        // Stripe's events since the last round (API calls and the clock).
        let queued_stripe = crate::stripe::webhooks::note_events(st, now);
        let mut due = Vec::new();
        let mut orphaned = Vec::new();
        // Realms with an unacknowledged QBO delivery ahead in the queue:
        // Intuit sends a realm's next one only after that.
        let mut realm_waits = std::collections::HashSet::new();
        for (i, w) in st.webhooks.iter().enumerate() {
            if w.status != WebhookStatus::Pending {
                continue;
            }
            if w.rail == WebhookRail::Qbo && !realm_waits.insert(w.business_id.as_str()) {
                continue;
            }
            if w.in_flight || w.next_attempt_at > now {
                continue;
            }
            match target_of(st, cfg, w) {
                None => orphaned.push(i),
                Some(None) => {}
                Some(Some(t)) => due.push((i, t)),
            }
        }
        for &i in &orphaned {
            st.webhooks[i].status = WebhookStatus::Failed;
        }
        let mut due: Vec<_> = due
            .into_iter()
            .map(|(i, t)| {
                let w = &mut st.webhooks[i];
                w.in_flight = true;
                (
                    w.event_id.clone(),
                    w.subscription_id.clone(),
                    w.body.clone(),
                    t,
                )
            })
            .collect();
        if st.faults.webhook_reorder {
            due.reverse();
        }
        if due.is_empty() && (!orphaned.is_empty() || queued_qbo > 0 || queued_stripe > 0) {
            sb.persist_logged(st).await;
        }
        (due, st.faults.webhook_duplicate)
    };
    if due.is_empty() {
        return 0;
    }
    let mut outcomes = Vec::new();
    for (event_id, sub, body, target) in &due {
        let mut out = send_once(sb, target, body, event_id).await;
        if duplicate {
            if let Outcome::Delivered(_) = out {
                out = send_once(sb, target, body, event_id).await;
                if !matches!(out, Outcome::Delivered(_)) {
                    // The first copy got through; that is what counts.
                    out = Outcome::Delivered(200);
                }
            }
        }
        outcomes.push((event_id.clone(), sub.clone(), out));
    }
    let mut delivered = 0;
    let mut stripe_delivered = Vec::new();
    let mut st = sb.inner.state.lock().await;
    let now = sb.inner.clock.now();
    for (event_id, sub, out) in outcomes {
        let Some(w) = st
            .webhooks
            .iter_mut()
            .find(|w| w.event_id == event_id && w.subscription_id == sub)
        else {
            continue;
        };
        w.in_flight = false;
        // Cancelled while it was on its way (its Plaid Item was removed).
        if w.status != WebhookStatus::Pending {
            continue;
        }
        w.attempts += 1;
        match out {
            Outcome::Delivered(s) => {
                w.status = WebhookStatus::Delivered;
                w.last_http_status = Some(s);
                delivered += 1;
                if w.rail == WebhookRail::Stripe {
                    stripe_delivered.push((w.business_id.clone(), event_id));
                }
            }
            Outcome::Fail(s) => {
                w.status = WebhookStatus::Failed;
                w.last_http_status = Some(s);
            }
            Outcome::Retry(s) => {
                w.last_http_status = s;
                let next = match w.rail {
                    WebhookRail::Ramp => {
                        (w.attempts < WEBHOOK_MAX_ATTEMPTS).then(|| backoff(w.attempts))
                    }
                    WebhookRail::Plaid => plaid_backoff(w.attempts),
                    WebhookRail::Qbo => Some(crate::qbo_webhooks::backoff(w.attempts)),
                    WebhookRail::Stripe => crate::stripe::webhooks::backoff(w.attempts),
                };
                match next {
                    Some(d) => w.next_attempt_at = now + d,
                    None => w.status = WebhookStatus::Failed,
                }
            }
        }
    }
    for (account, event_id) in stripe_delivered {
        crate::stripe::webhooks::delivered(&mut st, &account, &event_id);
    }
    sb.persist_logged(&st).await;
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_signature_matches_the_rails_md_vector() {
        let body = r#"{"id":"a461a658-8d78-4e66-b1fd-9c818bcfea6b","type":"bills.paid","created_at":"2025-04-01T12:00:00Z","business_id":"945c7d8f-6c35-4d63-9c1c-79e67c9cee73","object":{"id":"3aa9eed1-c793-4b52-a502-e7f2a7e4c1b2"}}"#;
        assert_eq!(
            sign_ramp_webhook(b"ramp_test_secret", body.as_bytes()),
            "cd1bdbdf07af336b0320ed4bf7146453aa5b2b8c52a4ecb26435b225c5383132"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::seconds(30));
        assert_eq!(backoff(2), Duration::seconds(60));
        assert_eq!(backoff(30), Duration::hours(6));
    }
}
