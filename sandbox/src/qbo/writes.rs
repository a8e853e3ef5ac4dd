//! QBO writes of the A/P side: BillPayment (create, full update, delete,
//! void; validated against the realm's vendors, bank accounts and open
//! bills, whose balances it moves) and Bill (create, full update, delete),
//! plus a bookkeeper's edits to bills (`edit_bill`).

use super::{not_found, vbox, Now};
use crate::sim_state::*;
use crate::wire::{decimal_text, minor_exponent, parse_minor};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

pub(super) fn amount(v: &Value, field: &str, now: Now) -> Result<i64, Box<Response>> {
    let t = v
        .get(field)
        .and_then(decimal_text)
        .ok_or_else(|| vbox("2020", "Required param missing", field, now))?;
    parse_minor(&t, minor_exponent("USD")).ok_or_else(|| vbox("2170", "Invalid amount", field, now))
}

pub(super) fn ref_value<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

pub(super) fn opt_text(v: &Value, field: &str) -> Option<String> {
    v.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub(super) fn date(v: &Value, field: &str, now: Now) -> Result<Option<NaiveDate>, Box<Response>> {
    // Client libraries send unset dates as "" (python-quickbooks does); QBO
    // takes that as absent.
    match v
        .get(field)
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| vbox("2170", "Invalid date", field, now)),
        None => Ok(None),
    }
}

pub(super) fn business(detail: &str, now: Now) -> Box<Response> {
    vbox(
        "6000",
        "A business validation error has occurred",
        detail,
        now,
    )
}

/// Move a bill's open balance (a payment applied: negative; restored:
/// positive). A balance change is a write of the bill.
fn move_balance(realm: &mut QboRealm, bill_id: &str, by: i64, at: DateTime<Utc>) {
    if let Some(b) = realm.bills.iter_mut().find(|b| b.id == bill_id) {
        b.balance_cents += by;
        b.sync_token += 1;
        b.updated = at;
    }
}

/// Create (`id` None) or replace (full update) a BillPayment from `v`.
pub(super) fn save_bill_payment(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let realm = &c.qbo;
    let old: Vec<QboPaymentLine> = id
        .and_then(|id| realm.bill_payments.iter().find(|p| p.id == id))
        .map(|p| p.lines.clone())
        .unwrap_or_default();
    let vendor_id = ref_value(v, "/VendorRef/value")
        .ok_or_else(|| vbox("2020", "Required param missing", "VendorRef", now))?;
    if !realm.vendor(vendor_id).is_some_and(|v| v.active) {
        return Err(vbox(
            "2500",
            "Invalid Reference Id",
            &format!("Vendor {vendor_id}"),
            now,
        ));
    }
    let bank = match v.get("PayType").and_then(Value::as_str) {
        Some("Check") => {
            let b = ref_value(v, "/CheckPayment/BankAccountRef/value").ok_or_else(|| {
                vbox(
                    "2020",
                    "Required param missing",
                    "CheckPayment.BankAccountRef",
                    now,
                )
            })?;
            if !realm
                .accounts
                .iter()
                .any(|a| a.id == b && a.account_type == "Bank")
            {
                return Err(vbox(
                    "2500",
                    "Invalid Reference Id",
                    &format!("Account {b}"),
                    now,
                ));
            }
            b.to_owned()
        }
        Some("CreditCard") => {
            let cc = ref_value(v, "/CreditCardPayment/CCAccountRef/value").ok_or_else(|| {
                vbox(
                    "2020",
                    "Required param missing",
                    "CreditCardPayment.CCAccountRef",
                    now,
                )
            })?;
            // The simulated companies hold no Credit Card account unless one
            // is created; only such an account can pay.
            if !realm
                .accounts
                .iter()
                .any(|a| a.id == cc && a.account_type == "Credit Card")
            {
                return Err(vbox(
                    "2500",
                    "Invalid Reference Id",
                    &format!("Account {cc}"),
                    now,
                ));
            }
            return Err(vbox(
                "500",
                "Unsupported Operation",
                "credit card bill payments are not simulated",
                now,
            ));
        }
        _ => {
            return Err(vbox(
                "2170",
                "Invalid Enumeration",
                "PayType must be Check or CreditCard",
                now,
            ))
        }
    };
    let total = amount(v, "TotalAmt", now)?;
    let lines = v
        .get("Line")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| vbox("2020", "Required param missing", "Line", now))?;
    let mut parsed: Vec<QboPaymentLine> = Vec::new();
    for line in lines {
        let amt = amount(line, "Amount", now)?;
        let links = line
            .get("LinkedTxn")
            .and_then(Value::as_array)
            .filter(|l| l.len() == 1);
        let link = links
            .and_then(|l| l.first())
            .ok_or_else(|| vbox("2020", "Required param missing", "Line.LinkedTxn", now))?;
        if link.get("TxnType").and_then(Value::as_str) != Some("Bill") {
            return Err(vbox(
                "2170",
                "Invalid Enumeration",
                "LinkedTxn.TxnType must be Bill",
                now,
            ));
        }
        let bill_id = link.get("TxnId").and_then(Value::as_str).unwrap_or("");
        let bill = realm
            .bills
            .iter()
            .find(|b| b.id == bill_id)
            .ok_or_else(|| not_found("Bill", bill_id, now))?;
        if bill.vendor_id != vendor_id {
            return Err(business("the linked bill belongs to another vendor", now));
        }
        // What this payment already applied to the bill is open again to it.
        let own: i64 = old
            .iter()
            .filter(|l| l.bill_id == bill_id)
            .map(|l| l.amount_cents)
            .sum();
        let here: i64 = parsed
            .iter()
            .filter(|l| l.bill_id == bill_id)
            .map(|l| l.amount_cents)
            .sum();
        if amt <= 0 || here + amt > bill.balance_cents + own {
            return Err(business("line amount exceeds the bill's open balance", now));
        }
        parsed.push(QboPaymentLine {
            amount_cents: amt,
            bill_id: bill_id.to_owned(),
        });
    }
    if parsed.iter().map(|l| l.amount_cents).sum::<i64>() != total {
        return Err(business("the sum of line amounts must equal TotalAmt", now));
    }
    let txn_date = date(v, "TxnDate", now)?.unwrap_or_else(|| now.today());
    let vendor_id = vendor_id.to_owned();
    let realm = &mut c.qbo;
    for l in &old {
        move_balance(realm, &l.bill_id, l.amount_cents, now.at);
    }
    for l in &parsed {
        move_balance(realm, &l.bill_id, -l.amount_cents, now.at);
    }
    let (private_note, doc_number) = (opt_text(v, "PrivateNote"), opt_text(v, "DocNumber"));
    if let Some(p) = id.and_then(|id| realm.bill_payments.iter_mut().find(|p| p.id == id)) {
        p.vendor_id = vendor_id;
        p.txn_date = txn_date;
        p.total_cents = total;
        p.bank_account_id = bank;
        p.private_note = private_note;
        p.doc_number = doc_number;
        p.lines = parsed;
        p.sync_token += 1;
        p.updated = now.at;
        return Ok(p.id.clone());
    }
    let id = realm.take_id();
    realm.bill_payments.push(QboBillPayment {
        id: id.clone(),
        vendor_id,
        txn_date,
        total_cents: total,
        bank_account_id: bank,
        private_note,
        doc_number,
        lines: parsed,
        sync_token: 0,
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}

/// Delete a BillPayment: the bills it paid are open again.
pub(super) fn delete_bill_payment(realm: &mut QboRealm, id: &str, now: Now) {
    let Some(i) = realm.bill_payments.iter().position(|p| p.id == id) else {
        return;
    };
    let p = realm.bill_payments.remove(i);
    for l in &p.lines {
        move_balance(realm, &l.bill_id, l.amount_cents, now.at);
    }
    tombstone(realm, "BillPayment", id, now.at);
}

/// Void a BillPayment: it stays, with zero amounts and the note "Voided";
/// the bills it paid are open again.
pub(super) fn void_bill_payment(realm: &mut QboRealm, id: &str, now: Now) {
    let Some(i) = realm.bill_payments.iter().position(|p| p.id == id) else {
        return;
    };
    let lines = realm.bill_payments[i].lines.clone();
    for l in &lines {
        move_balance(realm, &l.bill_id, l.amount_cents, now.at);
    }
    let p = &mut realm.bill_payments[i];
    for l in &mut p.lines {
        l.amount_cents = 0;
    }
    p.total_cents = 0;
    p.private_note = Some("Voided".into());
    p.sync_token += 1;
    p.updated = now.at;
}

pub(super) fn tombstone(realm: &mut QboRealm, entity: &str, id: &str, at: DateTime<Utc>) {
    realm.deleted.push(QboTombstone {
        entity: entity.into(),
        id: id.into(),
        deleted: at,
    });
}

/// What is paid on a bill (its total less its open balance).
fn paid_on(realm: &QboRealm, bill_id: &str) -> i64 {
    realm
        .bill_payments
        .iter()
        .flat_map(|p| &p.lines)
        .filter(|l| l.bill_id == bill_id)
        .map(|l| l.amount_cents)
        .sum()
}

/// Create or replace (full update) a Bill: vendor, dates, and its
/// account-based expense lines (their sum is the total; the first line's
/// account and description are kept).
pub(super) fn save_bill(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let realm = &c.qbo;
    let vendor_id = ref_value(v, "/VendorRef/value")
        .ok_or_else(|| vbox("2020", "Required param missing", "VendorRef", now))?;
    if !realm.vendor(vendor_id).is_some_and(|v| v.active) {
        return Err(vbox(
            "2500",
            "Invalid Reference Id",
            &format!("Vendor {vendor_id}"),
            now,
        ));
    }
    let lines: Vec<&Value> = v
        .get("Line")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter(|x| {
                    x.get("DetailType").and_then(Value::as_str) != Some("SubTotalLineDetail")
                })
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        return Err(vbox("2020", "Required param missing", "Line", now));
    }
    let mut total = 0;
    let mut first: Option<(String, String)> = None;
    for line in &lines {
        if line.get("DetailType").and_then(Value::as_str) != Some("AccountBasedExpenseLineDetail") {
            return Err(vbox(
                "2170",
                "Invalid Enumeration",
                "Line.DetailType must be AccountBasedExpenseLineDetail",
                now,
            ));
        }
        let acct = ref_value(line, "/AccountBasedExpenseLineDetail/AccountRef/value")
            .ok_or_else(|| vbox("2020", "Required param missing", "AccountRef", now))?;
        if !realm.accounts.iter().any(|a| a.id == acct) {
            return Err(vbox(
                "2500",
                "Invalid Reference Id",
                &format!("Account {acct}"),
                now,
            ));
        }
        let amt = amount(line, "Amount", now)?;
        if amt < 0 {
            return Err(business("a bill line cannot be negative", now));
        }
        total += amt;
        if first.is_none() {
            first = Some((
                acct.to_owned(),
                opt_text(line, "Description").unwrap_or_default(),
            ));
        }
    }
    let (account, description) = first.unwrap_or_default();
    let paid = id.map_or(0, |id| paid_on(realm, id));
    if total < paid {
        return Err(business(
            "the bill's total is below what is paid on it",
            now,
        ));
    }
    if let Some(id) = id {
        if realm
            .bill_payments
            .iter()
            .any(|p| p.vendor_id != vendor_id && p.lines.iter().any(|l| l.bill_id == id))
        {
            return Err(business("the bill has payments from its vendor", now));
        }
    }
    let txn_date = date(v, "TxnDate", now)?.unwrap_or_else(|| now.today());
    let due_date = date(v, "DueDate", now)?.unwrap_or(txn_date);
    let doc_number = opt_text(v, "DocNumber").unwrap_or_default();
    let vendor_id = vendor_id.to_owned();
    let realm = &mut c.qbo;
    if let Some(b) = id.and_then(|id| realm.bills.iter_mut().find(|b| b.id == id)) {
        b.vendor_id = vendor_id;
        b.doc_number = doc_number;
        b.txn_date = txn_date;
        b.due_date = due_date;
        b.total_cents = total;
        b.balance_cents = total - paid;
        b.expense_account_id = account;
        b.description = description;
        b.sync_token += 1;
        b.updated = now.at;
        return Ok(b.id.clone());
    }
    let id = realm.take_id();
    realm.bills.push(QboBill {
        id: id.clone(),
        vendor_id,
        doc_number,
        txn_date,
        due_date,
        total_cents: total,
        balance_cents: total,
        expense_account_id: account,
        description,
        sync_token: 0,
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}

/// Delete a bill; refused while payments are linked to it.
pub(super) fn delete_bill(realm: &mut QboRealm, id: &str, now: Now) -> Result<(), Box<Response>> {
    if paid_on(realm, id) > 0
        || realm
            .bill_payments
            .iter()
            .any(|p| p.lines.iter().any(|l| l.bill_id == id))
    {
        return Err(business(
            "This transaction is linked to a payment; delete the payment first",
            now,
        ));
    }
    realm.bills.retain(|b| b.id != id);
    tombstone(realm, "Bill", id, now.at);
    Ok(())
}

/// A bookkeeper's change to a bill (see [`crate::QboBillEdit`]). Each change
/// is a write in QBO's sense: the SyncToken and LastUpdatedTime move.
pub(crate) fn edit_bill(
    realm: &mut QboRealm,
    bill_id: &str,
    edit: crate::QboBillEdit,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> anyhow::Result<()> {
    use crate::QboBillEdit;
    let idx = realm
        .bills
        .iter()
        .position(|b| b.id == bill_id)
        .ok_or_else(|| anyhow::anyhow!("unknown bill {bill_id}"))?;
    match edit {
        QboBillEdit::Delete => {
            if realm
                .bill_payments
                .iter()
                .any(|p| p.lines.iter().any(|l| l.bill_id == bill_id))
            {
                anyhow::bail!("bill {bill_id} has payments linked");
            }
            realm.bills.remove(idx);
            tombstone(realm, "Bill", bill_id, now);
            return Ok(());
        }
        QboBillEdit::PayInFull => {
            let amount = realm.bills[idx].balance_cents;
            if amount <= 0 {
                anyhow::bail!("bill {bill_id} is already paid");
            }
            let bank = realm
                .account_named("Checking")
                .map(|a| a.id.clone())
                .unwrap_or_default();
            let id = realm.take_id();
            let b = &mut realm.bills[idx];
            b.balance_cents = 0;
            let vendor_id = b.vendor_id.clone();
            realm.bill_payments.push(QboBillPayment {
                id,
                vendor_id,
                txn_date: today,
                total_cents: amount,
                bank_account_id: bank,
                private_note: Some("Paid outside RowCol".into()),
                doc_number: None,
                lines: vec![QboPaymentLine {
                    amount_cents: amount,
                    bill_id: bill_id.to_owned(),
                }],
                sync_token: 0,
                created: now,
                updated: now,
            });
        }
        QboBillEdit::SetTotal(total) => {
            let b = &mut realm.bills[idx];
            let paid = b.total_cents - b.balance_cents;
            if total < paid {
                anyhow::bail!("total below what is already paid");
            }
            b.total_cents = total;
            b.balance_cents = total - paid;
        }
        QboBillEdit::SetPaymentAmount(amount) => {
            let mut linked = realm
                .bill_payments
                .iter_mut()
                .filter(|p| p.lines.iter().any(|l| l.bill_id == bill_id));
            let (Some(p), None) = (linked.next(), linked.next()) else {
                anyhow::bail!("bill {bill_id} has not exactly one payment linked");
            };
            for l in p.lines.iter_mut().filter(|l| l.bill_id == bill_id) {
                l.amount_cents = amount;
            }
            p.total_cents = p.lines.iter().map(|l| l.amount_cents).sum();
            p.sync_token += 1;
            p.updated = now;
            let b = &mut realm.bills[idx];
            b.balance_cents = (b.total_cents - amount).max(0);
        }
        QboBillEdit::SetVendor(vendor) => {
            if realm.vendor(&vendor).is_none() {
                anyhow::bail!("unknown vendor {vendor}");
            }
            realm.bills[idx].vendor_id = vendor;
        }
    }
    let b = &mut realm.bills[idx];
    b.sync_token += 1;
    b.updated = now;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::QboBillEdit;

    fn realm() -> (QboRealm, DateTime<Utc>) {
        let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let st = crate::world::generate(now, crate::world::DEFAULT_SEED);
        (st.clients[0].qbo.clone(), now)
    }

    #[test]
    fn a_new_total_keeps_what_was_paid_and_moves_the_sync_token() {
        let (mut r, now) = realm();
        let today = now.date_naive();
        let id = r.bills[0].id.clone();
        r.bills[0].balance_cents = r.bills[0].total_cents - 100;
        let token = r.bills[0].sync_token;
        edit_bill(&mut r, &id, QboBillEdit::SetTotal(5_000), now, today).unwrap();
        assert_eq!(
            (r.bills[0].total_cents, r.bills[0].balance_cents),
            (5_000, 4_900)
        );
        assert_eq!(r.bills[0].sync_token, token + 1);
        assert!(edit_bill(&mut r, &id, QboBillEdit::SetTotal(50), now, today).is_err());
        assert!(edit_bill(
            &mut r,
            &id,
            QboBillEdit::SetVendor("nope".into()),
            now,
            today
        )
        .is_err());
    }

    #[test]
    fn paying_in_full_links_a_bill_payment_and_blocks_deletion() {
        let (mut r, now) = realm();
        let today = now.date_naive();
        let id = r.bills[0].id.clone();
        let due = r.bills[0].balance_cents;
        let before = r.bill_payments.len();
        edit_bill(&mut r, &id, QboBillEdit::PayInFull, now, today).unwrap();
        assert_eq!(r.bills[0].balance_cents, 0);
        let p = &r.bill_payments[before];
        assert_eq!(
            (p.total_cents, p.lines[0].bill_id.as_str()),
            (due, id.as_str())
        );
        assert!(edit_bill(&mut r, &id, QboBillEdit::PayInFull, now, today).is_err());
        assert!(edit_bill(&mut r, &id, QboBillEdit::Delete, now, today).is_err());
        let other = r.bills[1].id.clone();
        edit_bill(&mut r, &other, QboBillEdit::Delete, now, today).unwrap();
        assert!(r.bills.iter().all(|b| b.id != other));
    }
}
