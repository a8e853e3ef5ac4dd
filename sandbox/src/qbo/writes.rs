//! QBO writes: BillPayment create (validated against the realm's vendors,
//! bank accounts and open bills) and sparse update of `PrivateNote`.

use super::vbox;
use crate::state::*;
use crate::wire::{decimal_text, minor_exponent, parse_minor};
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

fn amount(v: &Value, field: &str, now: DateTime<Utc>) -> Result<i64, Box<Response>> {
    let t = v
        .get(field)
        .and_then(decimal_text)
        .ok_or_else(|| vbox("2020", "Required param missing", field, now))?;
    parse_minor(&t, minor_exponent("USD")).ok_or_else(|| vbox("2170", "Invalid amount", field, now))
}

fn ref_value<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

pub(super) fn update_bill_payment(
    c: &mut SimClient,
    v: &Value,
    now: DateTime<Utc>,
) -> Result<usize, Box<Response>> {
    let id = v.get("Id").and_then(Value::as_str).unwrap_or("");
    if v.get("sparse").and_then(Value::as_bool) != Some(true) {
        return Err(vbox(
            "500",
            "Unsupported Operation",
            "only sparse updates are simulated",
            now,
        ));
    }
    let idx = c
        .qbo
        .bill_payments
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| vbox("610", "Object Not Found", id, now))?;
    let p = &mut c.qbo.bill_payments[idx];
    if v.get("SyncToken").and_then(Value::as_str) != Some(p.sync_token.to_string().as_str()) {
        return Err(vbox(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and another user were working on this at the same time.",
            now,
        ));
    }
    if let Some(note) = v.get("PrivateNote").and_then(Value::as_str) {
        p.private_note = Some(note.to_owned());
    }
    p.sync_token += 1;
    p.updated = now;
    Ok(idx)
}

pub(super) fn create_bill_payment(
    c: &mut SimClient,
    v: &Value,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<usize, Box<Response>> {
    let realm = &c.qbo;
    let vendor_id = ref_value(v, "/VendorRef/value")
        .ok_or_else(|| vbox("2020", "Required param missing", "VendorRef", now))?;
    if realm.vendor(vendor_id).is_none() {
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
            return Err(vbox(
                "2500",
                "Invalid Reference Id",
                "CreditCardPayment.CCAccountRef: no Credit Card account",
                now,
            ))
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
    let mut parsed = Vec::new();
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
            .ok_or_else(|| vbox("610", "Object Not Found", &format!("Bill {bill_id}"), now))?;
        if bill.vendor_id != vendor_id {
            return Err(vbox(
                "6000",
                "A business validation error has occurred",
                "the linked bill belongs to another vendor",
                now,
            ));
        }
        if amt <= 0 || amt > bill.balance_cents {
            return Err(vbox(
                "6000",
                "A business validation error has occurred",
                "line amount exceeds the bill's open balance",
                now,
            ));
        }
        parsed.push(QboPaymentLine {
            amount_cents: amt,
            bill_id: bill_id.to_owned(),
        });
    }
    if parsed.iter().map(|l| l.amount_cents).sum::<i64>() != total {
        return Err(vbox(
            "6000",
            "A business validation error has occurred",
            "the sum of line amounts must equal TotalAmt",
            now,
        ));
    }
    let txn_date = match v.get("TxnDate").and_then(Value::as_str) {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| vbox("2170", "Invalid date", "TxnDate", now))?,
        None => today,
    };
    let realm = &mut c.qbo;
    for l in &parsed {
        if let Some(b) = realm.bills.iter_mut().find(|b| b.id == l.bill_id) {
            b.balance_cents -= l.amount_cents;
            b.sync_token += 1;
            b.updated = now;
        }
    }
    let id = realm.take_id();
    realm.bill_payments.push(QboBillPayment {
        id,
        vendor_id: vendor_id.to_owned(),
        txn_date,
        total_cents: total,
        bank_account_id: bank,
        private_note: v
            .get("PrivateNote")
            .and_then(Value::as_str)
            .map(str::to_owned),
        doc_number: v
            .get("DocNumber")
            .and_then(Value::as_str)
            .map(str::to_owned),
        lines: parsed,
        sync_token: 0,
        created: now,
        updated: now,
    });
    Ok(realm.bill_payments.len() - 1)
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
