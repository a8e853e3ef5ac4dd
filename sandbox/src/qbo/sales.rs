//! QBO writes of the A/R side: Invoice (create, full update, delete, void)
//! and Payment (create, full update, delete, void). A Payment's
//! `Line[].LinkedTxn{TxnType: "Invoice"}` lowers that invoice's `Balance`;
//! deleting or voiding the payment restores it.

use super::writes::{amount, business, date, opt_text, ref_value, tombstone};
use super::{not_found, vbox, Now};
use crate::sim_state::*;
use axum::response::Response;
use chrono::DateTime;
use chrono::Utc;
use serde_json::Value;

fn customer(c: &SimClient, v: &Value, now: Now) -> Result<String, Box<Response>> {
    let id = ref_value(v, "/CustomerRef/value")
        .ok_or_else(|| vbox("2020", "Required param missing", "CustomerRef", now))?;
    match c.qbo.sales.customers.iter().find(|x| x.id == id) {
        Some(x) if x.active => Ok(id.to_owned()),
        Some(_) => Err(not_found("Customer", id, now)),
        None => Err(vbox(
            "2500",
            "Invalid Reference Id",
            &format!("Customer {id}"),
            now,
        )),
    }
}

fn applied_to(realm: &QboRealm, invoice_id: &str) -> i64 {
    realm
        .sales
        .payments
        .iter()
        .flat_map(|p| &p.lines)
        .filter(|l| l.invoice_id == invoice_id)
        .map(|l| l.amount_cents)
        .sum()
}

fn move_balance(realm: &mut QboRealm, invoice_id: &str, by: i64, at: DateTime<Utc>) {
    if let Some(i) = realm.sales.invoices.iter_mut().find(|i| i.id == invoice_id) {
        i.balance_cents += by;
        i.sync_token += 1;
        i.updated = at;
    }
}

pub(super) fn save_invoice(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let customer_id = customer(c, v, now)?;
    let mut lines = vec![];
    for line in v
        .get("Line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match line.get("DetailType").and_then(Value::as_str) {
            // QBO computes the subtotal itself.
            Some("SubTotalLineDetail") => continue,
            Some("SalesItemLineDetail") => {}
            _ => {
                return Err(vbox(
                    "2170",
                    "Invalid Enumeration",
                    "Line.DetailType must be SalesItemLineDetail",
                    now,
                ))
            }
        }
        let amt = amount(line, "Amount", now)?;
        lines.push(QboSalesLine {
            amount_cents: amt,
            description: opt_text(line, "Description"),
        });
    }
    if lines.is_empty() {
        return Err(vbox("2020", "Required param missing", "Line", now));
    }
    let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
    if total < 0 {
        return Err(business("an invoice total cannot be negative", now));
    }
    let realm = &c.qbo;
    let paid = id.map_or(0, |id| applied_to(realm, id));
    if total < paid {
        return Err(business(
            "the invoice's total is below what is paid on it",
            now,
        ));
    }
    if let Some(id) = id {
        let others =
            realm.sales.payments.iter().any(|p| {
                p.customer_id != customer_id && p.lines.iter().any(|l| l.invoice_id == id)
            });
        if others {
            return Err(business("the invoice has payments from its customer", now));
        }
    }
    let txn_date = date(v, "TxnDate", now)?.unwrap_or_else(|| now.today());
    let due_date = date(v, "DueDate", now)?;
    let (doc_number, private_note) = (opt_text(v, "DocNumber"), opt_text(v, "PrivateNote"));
    let realm = &mut c.qbo;
    if let Some(i) = id.and_then(|id| realm.sales.invoices.iter_mut().find(|i| i.id == id)) {
        i.customer_id = customer_id;
        i.doc_number = doc_number;
        i.txn_date = txn_date;
        i.due_date = due_date;
        i.total_cents = total;
        i.balance_cents = total - paid;
        i.lines = lines;
        i.private_note = private_note;
        i.sync_token += 1;
        i.updated = now.at;
        return Ok(i.id.clone());
    }
    let id = realm.take_id();
    realm.sales.invoices.push(QboInvoice {
        id: id.clone(),
        customer_id,
        doc_number,
        txn_date,
        due_date,
        total_cents: total,
        balance_cents: total,
        lines,
        private_note,
        sync_token: 0,
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}

pub(super) fn save_payment(
    c: &mut SimClient,
    id: Option<&str>,
    v: &Value,
    now: Now,
) -> Result<String, Box<Response>> {
    let customer_id = customer(c, v, now)?;
    let total = amount(v, "TotalAmt", now)?;
    if total < 0 {
        return Err(business("TotalAmt cannot be negative", now));
    }
    let realm = &c.qbo;
    let old: Vec<QboInvoiceLink> = id
        .and_then(|id| realm.sales.payments.iter().find(|p| p.id == id))
        .map(|p| p.lines.clone())
        .unwrap_or_default();
    let mut parsed: Vec<QboInvoiceLink> = vec![];
    for line in v
        .get("Line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let amt = amount(line, "Amount", now)?;
        let link = line
            .get("LinkedTxn")
            .and_then(Value::as_array)
            .filter(|l| l.len() == 1)
            .and_then(|l| l.first())
            .ok_or_else(|| vbox("2020", "Required param missing", "Line.LinkedTxn", now))?;
        if link.get("TxnType").and_then(Value::as_str) != Some("Invoice") {
            return Err(vbox(
                "2170",
                "Invalid Enumeration",
                "LinkedTxn.TxnType must be Invoice",
                now,
            ));
        }
        let inv_id = link.get("TxnId").and_then(Value::as_str).unwrap_or("");
        let inv = realm
            .sales
            .invoices
            .iter()
            .find(|i| i.id == inv_id)
            .ok_or_else(|| not_found("Invoice", inv_id, now))?;
        if inv.customer_id != customer_id {
            return Err(business(
                "the linked invoice belongs to another customer",
                now,
            ));
        }
        let own: i64 = old
            .iter()
            .filter(|l| l.invoice_id == inv_id)
            .map(|l| l.amount_cents)
            .sum();
        let here: i64 = parsed
            .iter()
            .filter(|l| l.invoice_id == inv_id)
            .map(|l| l.amount_cents)
            .sum();
        if amt <= 0 || here + amt > inv.balance_cents + own {
            return Err(business(
                "line amount exceeds the invoice's open balance",
                now,
            ));
        }
        parsed.push(QboInvoiceLink {
            amount_cents: amt,
            invoice_id: inv_id.to_owned(),
        });
    }
    // What is not applied to invoices stays a credit (UnappliedAmt).
    if parsed.iter().map(|l| l.amount_cents).sum::<i64>() > total {
        return Err(business("the lines apply more than TotalAmt", now));
    }
    let txn_date = date(v, "TxnDate", now)?.unwrap_or_else(|| now.today());
    let (private_note, payment_ref_num) =
        (opt_text(v, "PrivateNote"), opt_text(v, "PaymentRefNum"));
    let realm = &mut c.qbo;
    for l in &old {
        move_balance(realm, &l.invoice_id, l.amount_cents, now.at);
    }
    for l in &parsed {
        move_balance(realm, &l.invoice_id, -l.amount_cents, now.at);
    }
    if let Some(p) = id.and_then(|id| realm.sales.payments.iter_mut().find(|p| p.id == id)) {
        p.customer_id = customer_id;
        p.txn_date = txn_date;
        p.total_cents = total;
        p.lines = parsed;
        p.private_note = private_note;
        p.payment_ref_num = payment_ref_num;
        p.sync_token += 1;
        p.updated = now.at;
        return Ok(p.id.clone());
    }
    let id = realm.take_id();
    realm.sales.payments.push(QboPayment {
        id: id.clone(),
        customer_id,
        txn_date,
        total_cents: total,
        lines: parsed,
        private_note,
        payment_ref_num,
        sync_token: 0,
        created: now.at,
        updated: now.at,
    });
    Ok(id)
}

pub(super) fn delete_payment(realm: &mut QboRealm, id: &str, now: Now) {
    let Some(i) = realm.sales.payments.iter().position(|p| p.id == id) else {
        return;
    };
    let p = realm.sales.payments.remove(i);
    for l in &p.lines {
        move_balance(realm, &l.invoice_id, l.amount_cents, now.at);
    }
    tombstone(realm, "Payment", id, now.at);
}

pub(super) fn void_payment(realm: &mut QboRealm, id: &str, now: Now) {
    let Some(i) = realm.sales.payments.iter().position(|p| p.id == id) else {
        return;
    };
    let lines = realm.sales.payments[i].lines.clone();
    for l in &lines {
        move_balance(realm, &l.invoice_id, l.amount_cents, now.at);
    }
    let p = &mut realm.sales.payments[i];
    for l in &mut p.lines {
        l.amount_cents = 0;
    }
    p.total_cents = 0;
    p.private_note = Some("Voided".into());
    p.sync_token += 1;
    p.updated = now.at;
}

/// Invoices with payments applied are neither deleted nor voided (the
/// payment goes first).
fn unpaid(realm: &QboRealm, id: &str, now: Now) -> Result<(), Box<Response>> {
    if applied_to(realm, id) > 0 {
        return Err(business(
            "This transaction has payments applied; delete or void the payment first",
            now,
        ));
    }
    Ok(())
}

pub(super) fn delete_invoice(
    realm: &mut QboRealm,
    id: &str,
    now: Now,
) -> Result<(), Box<Response>> {
    unpaid(realm, id, now)?;
    realm.sales.invoices.retain(|i| i.id != id);
    tombstone(realm, "Invoice", id, now.at);
    Ok(())
}

pub(super) fn void_invoice(realm: &mut QboRealm, id: &str, now: Now) -> Result<(), Box<Response>> {
    unpaid(realm, id, now)?;
    if let Some(i) = realm.sales.invoices.iter_mut().find(|i| i.id == id) {
        for l in &mut i.lines {
            l.amount_cents = 0;
        }
        i.total_cents = 0;
        i.balance_cents = 0;
        i.private_note = Some("Voided".into());
        i.sync_token += 1;
        i.updated = now.at;
    }
    Ok(())
}
