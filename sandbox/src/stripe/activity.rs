//! The simulated business of each client's Stripe account: seeded from the
//! world's seed (customers, invoices over the last weeks, their payments and
//! daily automatic payouts), then carried on day by day as the sandbox clock
//! moves: customers pay open `send_invoice` invoices on a day fixed by the
//! invoice (some never do), payouts move along.

use super::data::{AccountData, StripeData};
use super::{invoices, payments, payouts};
use crate::sim_state::SimState;
use crate::world::Prng;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

const PAST_DAYS: i64 = 45;
const CUSTOMERS: [(&str, &str); 6] = [
    ("Harbor Tech LLC", "ap@harbortech.test"),
    ("Maple Street Clinic", "billing@maplestreet.test"),
    ("Northwind Supply", "accounts@northwind.test"),
    ("Oak & Iron Builders", "office@oakiron.test"),
    ("Riverbend Cafe", "owner@riverbend.test"),
    ("Summit Legal Group", "finance@summitlegal.test"),
];

fn midnight(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(0)
}

/// A number from the invoice id (stable across restarts).
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The day after finalization a customer pays an open `send_invoice`
/// invoice; `None`: never (one in five).
fn pay_after_days(invoice_id: &str) -> Option<i64> {
    let h = hash(invoice_id);
    (!h.is_multiple_of(5)).then_some(((h >> 8) % 40) as i64 + 1)
}

/// Give every Stripe account that has no data yet its seeded history up to
/// `now`. Returns whether anything changed.
#[cfg(test)]
pub(crate) fn ensure(st: &mut SimState, now: DateTime<Utc>) -> bool {
    let ids: Vec<String> = st
        .oauth
        .stripe_accounts
        .iter()
        .map(|a| a.id.clone())
        .collect();
    let mut changed = false;
    for id in ids {
        changed |= ensure_account(st, &id, now);
    }
    changed
}

/// Give account `id` its seeded history up to `now` if it has no data yet:
/// the first time anyone calls Stripe's API for it. Made on demand, so a
/// world whose Stripe accounts nobody reads (the simulation's) pays
/// nothing for them; the history depends only on the world's seed and the
/// account, so a client cannot tell it was not there all along. Returns
/// whether anything changed.
pub(crate) fn ensure_account(st: &mut SimState, id: &str, now: DateTime<Utc>) -> bool {
    if st.stripe.accounts.contains_key(id) {
        return false;
    }
    let Some((i, name)) = st
        .oauth
        .stripe_accounts
        .iter()
        .enumerate()
        .find(|(_, a)| a.id == id)
        .map(|(i, a)| (i, a.display_name.clone()))
    else {
        return false;
    };
    let acct = seed(st.seed.wrapping_add(i as u64 * 7919), &name, now);
    // Its payouts paid in the past are in the bank's seeded history
    // already; the ones still on their way land there (`world::living`).
    for p in acct.payouts.iter().filter(|p| p["status"] == "paid") {
        if let Some(po) = p["id"].as_str() {
            st.stripe_payouts_banked.insert(po.to_owned());
        }
    }
    st.stripe.accounts.insert(id.to_owned(), acct);
    st.stripe_changes += 1;
    true
}

fn seed(seed: u64, name: &str, now: DateTime<Utc>) -> AccountData {
    let mut rng = Prng::new(seed ^ 0x5757_0001);
    let mut acct = AccountData {
        salt: rng.next_u64(),
        invoice_prefix: name
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(4)
            .collect::<String>()
            .to_ascii_uppercase()
            + &rng.digits(4),
        ..AccountData::default()
    };
    let today = now.date_naive();
    let first = today - chrono::Duration::days(PAST_DAYS);
    let n_customers = rng.between(3, 6) as usize;
    let mut customers = vec![];
    for (name, email) in CUSTOMERS.iter().take(n_customers) {
        let at = midnight(first) + 9 * 3600;
        let id = acct.id("cus_");
        let v = json!({
            "id": id, "object": "customer", "address": null, "balance": 0, "created": at,
            "currency": "usd", "default_source": null, "delinquent": false, "description": null,
            "email": email, "invoice_prefix": id[4..12].to_ascii_uppercase(),
            "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
            "livemode": false, "metadata": {}, "name": name, "phone": null, "preferred_locales": [],
            "shipping": null, "tax_exempt": "none", "test_clock": null,
        });
        acct.event("customer.created", &v, None, at);
        acct.customers.push(v);
        customers.push(id);
    }
    // An invoice every few days, net 30, sent the day it is made.
    let mut day = first + chrono::Duration::days(1);
    while day <= today {
        let at = midnight(day) + 10 * 3600;
        if rng.below(3) == 0 && at <= now.timestamp() {
            let cus = customers[rng.below(customers.len() as u64) as usize].clone();
            let amount = rng.between(150, 4_800) as i64 * 100 + rng.below(100) as i64;
            issue_invoice(&mut acct, &cus, amount, json!({}), at);
        }
        run_day(&mut acct, day, now);
        day += chrono::Duration::days(1);
    }
    acct
}

/// A finalized `send_invoice` invoice (net 30) with one line; its id.
pub(crate) fn issue_invoice(
    acct: &mut AccountData,
    cus: &str,
    amount: i64,
    metadata: serde_json::Value,
    at: i64,
) -> Option<String> {
    let c = AccountData::find(&acct.customers, cus).cloned()?;
    let id = acct.id("in_");
    let ii = acct.id("ii_");
    let il = acct.id("il_");
    acct.invoice_seq += 1;
    let number = format!("{}-{:04}", acct.invoice_prefix, acct.invoice_seq);
    let line = json!({
        "id": il, "object": "line_item", "amount": amount, "currency": "usd",
        "description": "Professional services", "discountable": true, "discounts": [], "invoice": id,
        "livemode": false, "metadata": {},
        "parent": {"type": "invoice_item_details", "invoice_item_details": {"invoice_item": ii, "proration": false}, "subscription_item_details": null},
        "period": {"start": at, "end": at}, "pricing": null, "quantity": 1, "taxes": [],
    });
    let v = json!({
        "id": id, "object": "invoice", "account_country": "US",
        "amount_due": amount, "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": amount,
        "amount_shipping": 0, "attempt_count": 0, "attempted": false, "auto_advance": true,
        "billing_reason": "manual", "collection_method": "send_invoice", "created": at, "currency": "usd",
        "customer": cus, "customer_email": c["email"], "customer_name": c["name"],
        "days_until_due": 30, "description": null, "due_date": at + 30 * 86_400, "effective_at": at,
        "ending_balance": 0, "hosted_invoice_url": null, "invoice_pdf": null,
        "lines": {"object": "list", "data": [line], "has_more": false, "total_count": 1, "url": format!("/v1/invoices/{id}/lines")},
        "livemode": false, "metadata": metadata, "next_payment_attempt": null, "number": number,
        "period_end": at, "period_start": at, "starting_balance": 0, "status": "open",
        "status_transitions": {"finalized_at": at, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
        "subtotal": amount, "total": amount, "webhooks_delivered_at": at,
    });
    acct.invoice_items.push(json!({
        "id": ii, "object": "invoiceitem", "amount": amount, "currency": "usd", "customer": cus,
        "date": at, "created": at, "description": "Professional services", "invoice": id,
        "livemode": false, "metadata": {},
    }));
    acct.event("invoice.created", &v, None, at);
    acct.event("invoice.finalized", &v, None, at);
    acct.invoices.push(v);
    Some(id)
}

/// One day of activity (run once per day, at most up to `now`): payouts
/// move, customers pay what they pay today (by card), today's payout goes.
fn run_day(acct: &mut AccountData, day: NaiveDate, now: DateTime<Utc>) {
    let start = midnight(day);
    let at = start.min(now.timestamp());
    payouts::move_along(acct, start, at);
    let payers: Vec<(String, i64, String)> =
        acct.invoices
            .iter()
            .filter(|v| v["status"] == "open" && v["collection_method"] == "send_invoice")
            .filter_map(|v| {
                let id = v["id"].as_str()?;
                let fin = v["status_transitions"]["finalized_at"].as_i64()?;
                let d = pay_after_days(id)?;
                (midnight(DateTime::from_timestamp(fin, 0)?.date_naive()) + d * 86_400 == start)
                    .then(|| {
                        (
                            id.to_owned(),
                            v["amount_remaining"].as_i64().unwrap_or(0),
                            v["customer"].as_str().unwrap_or("").to_owned(),
                        )
                    })
            })
            .collect();
    let pay_at = (start + 8 * 3600).min(now.timestamp());
    for (id, amount, cus) in payers {
        if payments::charge(
            acct,
            amount,
            "usd",
            Some(&cus),
            "pm_card_visa",
            pay_at,
            Some(&id),
        )
        .is_ok()
        {
            invoices::mark_paid(acct, &id, pay_at);
        }
    }
    payouts::make_automatic(acct, start, at);
    acct.last_day = Some(day);
}

/// Run the days from after each account's last day up to `now`'s day.
/// Returns whether any day ran.
pub(crate) fn advance(data: &mut StripeData, now: DateTime<Utc>) -> bool {
    let today = now.date_naive();
    let mut ran = false;
    for acct in data.accounts.values_mut() {
        let mut day = acct
            .last_day
            .map_or(today, |d| d + chrono::Duration::days(1));
        while day <= today {
            run_day(acct, day, now);
            ran = true;
            day += chrono::Duration::days(1);
        }
    }
    ran
}
