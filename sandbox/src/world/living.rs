//! The world keeps living as the clock moves (switched on by
//! `Faults::living_world`): every day, each client's bookkeeper enters new
//! vendor bills in QuickBooks; now and then one is paid by hand outside
//! RowCol (a check from Checking, which the bank then shows), deleted (a
//! QBO bill is deleted, not voided), or edited (its amount or its vendor).
//! Clients that use Stripe (their account's data exists: see
//! `stripe::ensure_account`) also invoice their customers: an invoice in
//! QBO and the same one sent through Stripe, most carrying the QBO number
//! in `metadata[qbo_invoice_number]`, some not, a few for another amount;
//! customers pay them by card, and Stripe's payouts land in the bank, net
//! of fees, on their arrival date.
//! Each day's events come from the world's seed, the client and the day,
//! so a replayed seed lives the same life. Every event is written to
//! `SimState::world_log`, so a test can tell what the world did from what
//! it injected.

use super::Prng;
use crate::sim_state::{PlaidTxnRec, QboBill, QboCustomer, QboInvoice, QboSalesLine, SimState};
use crate::QboBillEdit;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

const LIVING_SALT: u64 = 0x11f1_0a7e_5eed_0001;
/// Entries kept in the log (the oldest are dropped first).
const LOG_CAP: usize = 2_000;

/// One thing the world did on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldEvent {
    pub day: NaiveDate,
    pub realm_id: String,
    pub bill_id: String,
    /// `bill_arrived`, `paid_by_hand`, `deleted`, `amount_edited`,
    /// `vendor_edited`.
    pub kind: String,
    pub detail: String,
}

/// Live the days after `st.living_through` up to the day before `today`
/// (a day is lived once it is over, as the bank's activity is). Does
/// nothing while the switch is off, except to keep the mark at yesterday,
/// so switching it on never back-fills the quiet days.
pub fn live(st: &mut SimState, today: NaiveDate, now: DateTime<Utc>) {
    let yesterday = today - Duration::days(1);
    let from = st.living_through.unwrap_or(yesterday);
    if !st.faults.living_world {
        st.living_through = Some(from.max(yesterday));
        return;
    }
    let mut d = from;
    while d < yesterday {
        d += Duration::days(1);
        for ci in 0..st.clients.len() {
            live_day(st, ci, d, now);
        }
    }
    st.living_through = Some(d.max(from));
}

fn live_day(st: &mut SimState, ci: usize, day: NaiveDate, now: DateTime<Utc>) {
    let ordinal = u64::from(day.num_days_from_ce().unsigned_abs());
    let mut rng = Prng::new(st.seed ^ LIVING_SALT ^ ((ci as u64) << 40) ^ ordinal);
    let mut events = vec![];
    // About one new bill every three days.
    if rng.below(3) == 0 {
        if let Some(e) = new_bill(st, ci, &mut rng, day, now) {
            events.push(e);
        }
    }
    // About one change to an open bill a month.
    if rng.below(30) == 0 {
        if let Some(e) = change_a_bill(st, ci, &mut rng, day, now) {
            events.push(e);
        }
    }
    // About one Stripe invoice every four days, for clients using Stripe.
    if rng.below(4) == 0 {
        if let Some(e) = stripe_invoice(st, ci, &mut rng, day, now) {
            events.push(e);
        }
    }
    st.world_log.extend(events);
    let over = st.world_log.len().saturating_sub(LOG_CAP);
    st.world_log.drain(..over);
}

/// An invoice in QBO and, for it, one sent through the client's Stripe.
fn stripe_invoice(
    st: &mut SimState,
    ci: usize,
    rng: &mut Prng,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Option<WorldEvent> {
    let account = st.oauth.stripe_account_of(&st.clients[ci].name)?.id.clone();
    let acct = st.stripe.accounts.get_mut(&account)?;
    if acct.customers.is_empty() {
        return None;
    }
    let cus = acct.customers[rng.below(acct.customers.len() as u64) as usize].clone();
    let (cus_id, cus_name) = (
        cus["id"].as_str()?.to_owned(),
        cus["name"].as_str()?.to_owned(),
    );
    let amount = rng.range(150, 4_800) * 100 + rng.range(0, 99);
    // One in ten is sent for another amount than the books say.
    let charged = if rng.below(10) == 0 {
        amount - rng.range(1, 40) * 100
    } else {
        amount
    };
    let realm = &mut st.clients[ci].qbo;
    let customer_id = match realm
        .sales
        .customers
        .iter()
        .find(|c| c.display_name == cus_name)
    {
        Some(c) => c.id.clone(),
        None => {
            let id = realm.take_id();
            realm.sales.customers.push(QboCustomer {
                id: id.clone(),
                display_name: cus_name.clone(),
                active: true,
                sync_token: 0,
                created: now,
                updated: now,
            });
            id
        }
    };
    let id = realm.take_id();
    let doc = format!("{}", 1000 + realm.sales.invoices.len());
    realm.sales.invoices.push(QboInvoice {
        id: id.clone(),
        customer_id,
        doc_number: Some(doc.clone()),
        txn_date: day,
        due_date: Some(day + Duration::days(30)),
        total_cents: amount,
        balance_cents: amount,
        lines: vec![QboSalesLine {
            amount_cents: amount,
            description: Some("Professional services".into()),
        }],
        private_note: None,
        sync_token: 0,
        created: now,
        updated: now,
    });
    // One in five is sent without the QBO number.
    let metadata = if rng.below(5) == 0 {
        serde_json::json!({})
    } else {
        serde_json::json!({"qbo_invoice_number": doc})
    };
    let realm_id = realm.realm_id.clone();
    let acct = st.stripe.accounts.get_mut(&account)?;
    let stripe_id =
        crate::stripe::issue_invoice(acct, &cus_id, charged, metadata.clone(), now.timestamp())?;
    st.stripe_changes += 1;
    Some(WorldEvent {
        day,
        realm_id,
        bill_id: id,
        kind: "stripe_invoice_sent".into(),
        detail: format!(
            "QBO invoice {doc} for {amount} cents to {cus_name}; Stripe {stripe_id} for {charged} cents, metadata {metadata}"
        ),
    })
}

/// Credit each paid Stripe payout not yet in its client's bank (Plaid:
/// money in is negative), on its arrival date. Runs while the world lives.
pub fn bank_stripe_payouts(st: &mut SimState) {
    if !st.faults.living_world {
        return;
    }
    for ci in 0..st.clients.len() {
        let Some(account) = st
            .oauth
            .stripe_account_of(&st.clients[ci].name)
            .map(|a| a.id.clone())
        else {
            continue;
        };
        let Some(acct) = st.stripe.accounts.get(&account) else {
            continue;
        };
        let paid: Vec<(String, i64, i64)> = acct
            .payouts
            .iter()
            .filter(|p| p["status"] == "paid")
            .filter_map(|p| {
                Some((
                    p["id"].as_str()?.to_owned(),
                    p["amount"].as_i64()?,
                    p["arrival_date"].as_i64()?,
                ))
            })
            .filter(|(id, _, _)| !st.stripe_payouts_banked.contains(id))
            .collect();
        for (po, amount, arrival) in paid {
            let Some(date) = DateTime::from_timestamp(arrival, 0).map(|t| t.date_naive()) else {
                continue;
            };
            let item = &mut st.clients[ci].plaid;
            item.account.available_cents += amount;
            item.account.current_cents += amount;
            item.txns.push(PlaidTxnRec::posted(
                format!("stripe{}", po.trim_start_matches("po_")),
                -amount,
                date,
                "STRIPE TRANSFER".into(),
            ));
            st.stripe_payouts_banked.insert(po);
        }
    }
}

fn new_bill(
    st: &mut SimState,
    ci: usize,
    rng: &mut Prng,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Option<WorldEvent> {
    let c = &mut st.clients[ci];
    let realm = &mut c.qbo;
    let vendors: Vec<_> = realm.vendors.iter().filter(|v| v.active).collect();
    if vendors.is_empty() {
        return None;
    }
    let vendor = vendors[rng.below(vendors.len() as u64) as usize].clone();
    let expense = realm
        .account_named("Operating Expenses")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    // Bills in proportion to the client's spending: a few days of burn.
    let burn = c.plaid.daily_burn_cents.max(20_000);
    let amount = rng.range(burn / 4, burn * 3) / 100 * 100 + rng.range(0, 99);
    let doc = format!("INV-{}", rng.range(10_000, 99_999));
    // Dated the day it was entered, but QBO stamps its metadata with the
    // moment it was written: a reader asking for what changed since its
    // last look must see it.
    let at = now;
    let id = realm.take_id();
    realm.bills.push(QboBill {
        id: id.clone(),
        vendor_id: vendor.id.clone(),
        doc_number: doc.clone(),
        txn_date: day,
        due_date: day + Duration::days(rng.range(10, 35)),
        total_cents: amount,
        balance_cents: amount,
        expense_account_id: expense,
        description: format!("{} services", vendor.display_name),
        sync_token: 0,
        created: at,
        updated: at,
    });
    Some(WorldEvent {
        day,
        realm_id: realm.realm_id.clone(),
        bill_id: id,
        kind: "bill_arrived".into(),
        detail: format!("{doc} from {} for {amount} cents", vendor.display_name),
    })
}

fn change_a_bill(
    st: &mut SimState,
    ci: usize,
    rng: &mut Prng,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Option<WorldEvent> {
    let c = &mut st.clients[ci];
    let open: Vec<(String, i64, String)> = c
        .qbo
        .bills
        .iter()
        .filter(|b| b.balance_cents > 0 && b.balance_cents == b.total_cents)
        .map(|b| (b.id.clone(), b.total_cents, b.vendor_id.clone()))
        .collect();
    if open.is_empty() {
        return None;
    }
    let (bill_id, total, vendor_id) = open[rng.below(open.len() as u64) as usize].clone();
    let other_vendor = c
        .qbo
        .vendors
        .iter()
        .find(|v| v.active && v.id != vendor_id)
        .map(|v| v.id.clone());
    let (edit, kind, detail) = match rng.below(4) {
        0 => (
            QboBillEdit::PayInFull,
            "paid_by_hand",
            format!("paid {total} cents by check from Checking"),
        ),
        1 => (
            QboBillEdit::Delete,
            "deleted",
            "deleted in QuickBooks".into(),
        ),
        2 => {
            let new = total + total / 10;
            (
                QboBillEdit::SetTotal(new),
                "amount_edited",
                format!("total {total} -> {new} cents"),
            )
        }
        _ => match other_vendor {
            Some(v) => (
                QboBillEdit::SetVendor(v.clone()),
                "vendor_edited",
                format!("vendor {vendor_id} -> {v}"),
            ),
            None => return None,
        },
    };
    crate::qbo::edit_bill(&mut c.qbo, &bill_id, edit, now, day).ok()?;
    if kind == "paid_by_hand" {
        // The check clears at the bank the same day.
        let amount = total;
        let check = rng.range(1000, 9999);
        c.plaid.account.available_cents -= amount;
        c.plaid.account.current_cents -= amount;
        c.plaid.txns.push(PlaidTxnRec::posted(
            format!("check{}x{bill_id}", c.qbo.realm_id),
            amount,
            day,
            format!("CHECK #{check}"),
        ));
    }
    Some(WorldEvent {
        day,
        realm_id: c.qbo.realm_id.clone(),
        bill_id,
        kind: kind.into(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{generate_sized, start_instant, DEFAULT_SEED};

    fn world(living: bool) -> (SimState, DateTime<Utc>) {
        let now = start_instant(NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"));
        let mut st = generate_sized(now, DEFAULT_SEED, 24);
        st.faults.living_world = living;
        (st, now)
    }

    fn bills(st: &SimState) -> usize {
        st.clients.iter().map(|c| c.qbo.bills.len()).sum()
    }

    #[test]
    fn a_quiet_world_does_not_change_and_does_not_back_fill() {
        let (mut st, now) = world(false);
        let before = bills(&st);
        let later = now + Duration::days(30);
        live(&mut st, later.date_naive(), later);
        assert_eq!(bills(&st), before);
        assert!(st.world_log.is_empty());
        // Switched on now, it lives from here on, not the quiet month.
        st.faults.living_world = true;
        let next = later + Duration::days(1);
        live(&mut st, next.date_naive(), next);
        assert!(st.world_log.iter().all(|e| e.day == later.date_naive()));
    }

    #[test]
    fn a_living_world_gets_new_bills_and_changes_some_the_same_way_every_time() {
        let (mut a, now) = world(true);
        let (mut b, _) = world(true);
        let before = bills(&a);
        let later = now + Duration::days(60);
        live(&mut a, later.date_naive(), later);
        live(&mut b, later.date_naive(), later);
        assert_eq!(
            a.world_log, b.world_log,
            "the same seed lives the same life"
        );
        let arrived = a
            .world_log
            .iter()
            .filter(|e| e.kind == "bill_arrived")
            .count();
        // About one every three days for each of 24 clients over 60 days.
        assert!((300..=660).contains(&arrived), "{arrived} bills arrived");
        for kind in ["paid_by_hand", "deleted", "amount_edited", "vendor_edited"] {
            assert!(
                a.world_log.iter().any(|e| e.kind == kind),
                "no {kind} in {} events",
                a.world_log.len()
            );
        }
        let deleted = a.world_log.iter().filter(|e| e.kind == "deleted").count();
        assert_eq!(bills(&a), before + arrived - deleted);
        // Days are lived once: living the same day again changes nothing.
        let n = a.world_log.len();
        live(&mut a, later.date_naive(), later);
        assert_eq!(a.world_log.len(), n);
    }

    #[test]
    fn clients_on_stripe_invoice_through_it_and_its_payouts_land_in_the_bank() {
        let (mut st, now) = world(true);
        crate::oauth::ensure(&mut st, now);
        let accounts: Vec<String> = st
            .oauth
            .stripe_accounts
            .iter()
            .map(|a| a.id.clone())
            .collect();
        for id in accounts.iter().take(6) {
            crate::stripe::ensure_account(&mut st, id, now);
        }
        let banked_at_start = st.stripe_payouts_banked.len();
        assert!(
            banked_at_start > 0,
            "the seeded past's payouts count as banked"
        );
        let credits = |st: &SimState| -> Vec<(String, i64)> {
            st.clients
                .iter()
                .flat_map(|c| c.plaid.txns.iter())
                .filter(|t| t.name == "STRIPE TRANSFER")
                .map(|t| (t.id.clone(), t.amount_cents))
                .collect()
        };
        assert!(credits(&st).is_empty());
        for d in 1..=40 {
            let t = now + Duration::days(d);
            live(&mut st, t.date_naive(), t);
            crate::stripe::advance(&mut st.stripe, t);
            bank_stripe_payouts(&mut st);
        }
        let sent: Vec<_> = st
            .world_log
            .iter()
            .filter(|e| e.kind == "stripe_invoice_sent")
            .collect();
        assert!(sent.len() >= 20, "{} Stripe invoices", sent.len());
        assert!(sent.iter().any(|e| e.detail.contains("qbo_invoice_number")));
        assert!(sent.iter().any(|e| e.detail.ends_with("metadata {}")));
        // Every one has its QBO invoice; only clients on Stripe send any.
        for e in &sent {
            let c = st
                .clients
                .iter()
                .find(|c| c.qbo.realm_id == e.realm_id)
                .expect("client");
            assert!(c.qbo.sales.invoices.iter().any(|i| i.id == e.bill_id));
            let acct = st.oauth.stripe_account_of(&c.name).expect("account");
            assert!(accounts[..6].contains(&acct.id), "{}", c.name);
        }
        // Every payout paid since is credited once, for its amount.
        let paid_since: i64 = st
            .stripe
            .accounts
            .values()
            .flat_map(|a| a.payouts.iter())
            .filter(|p| p["status"] == "paid")
            .filter(|p| p["arrival_date"].as_i64().unwrap_or(0) > now.timestamp())
            .map(|p| p["amount"].as_i64().unwrap_or(0))
            .sum();
        let credited: i64 = credits(&st).iter().map(|(_, a)| -a).sum();
        assert!(paid_since > 0);
        assert_eq!(credited, paid_since);
        let ids: std::collections::HashSet<_> = credits(&st).into_iter().map(|(i, _)| i).collect();
        assert_eq!(ids.len(), credits(&st).len(), "each payout credited once");
    }

    #[test]
    fn a_bill_paid_by_hand_is_paid_in_qbo_and_debited_at_the_bank() {
        let (mut st, now) = world(true);
        let later = now + Duration::days(90);
        live(&mut st, later.date_naive(), later);
        let e = st
            .world_log
            .iter()
            .find(|e| e.kind == "paid_by_hand")
            .expect("a bill paid by hand")
            .clone();
        let c = st
            .clients
            .iter()
            .find(|c| c.qbo.realm_id == e.realm_id)
            .expect("its client");
        let bill = c
            .qbo
            .bills
            .iter()
            .find(|b| b.id == e.bill_id)
            .expect("bill");
        assert_eq!(bill.balance_cents, 0);
        assert!(c
            .qbo
            .bill_payments
            .iter()
            .any(|p| p.lines.iter().any(|l| l.bill_id == e.bill_id)));
        let debit = c
            .plaid
            .txns
            .iter()
            .find(|t| t.id == format!("check{}x{}", e.realm_id, e.bill_id))
            .expect("the check at the bank");
        assert_eq!(debit.amount_cents, bill.total_cents);
        assert_eq!(debit.date, e.day);
    }
}
