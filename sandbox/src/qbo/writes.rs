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
