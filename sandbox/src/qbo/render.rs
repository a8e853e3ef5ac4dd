//! Rendering of simulator records as QBO JSON entities (`Bill`,
//! `BillPayment`, `Vendor`, `Account`), with QBO's Pacific-time timestamps.

use crate::state::*;
use crate::wire::decimal_number as num;
use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};

/// UTC-7, checked at compile time.
const PACIFIC: FixedOffset = match FixedOffset::west_opt(7 * 3600) {
    Some(o) => o,
    None => panic!("a valid offset"),
};

/// QBO speaks Pacific time offsets.
pub(super) fn qtime(t: DateTime<Utc>) -> String {
    t.with_timezone(&PACIFIC)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

fn meta(created: DateTime<Utc>, updated: DateTime<Utc>) -> Value {
    json!({"CreateTime": qtime(created), "LastUpdatedTime": qtime(updated)})
}

fn render_account(a: &QboAccount, cur: &str) -> Value {
    json!({
        "Id": a.id, "SyncToken": "0", "domain": "QBO", "sparse": false, "Name": a.name, "FullyQualifiedName": a.name,
        "AccountType": a.account_type, "AccountSubType": a.account_sub_type, "Classification": a.classification,
        "Active": true, "SubAccount": false, "CurrentBalance": num(a.current_balance_cents),
        "CurrentBalanceWithSubAccounts": num(a.current_balance_cents), "CurrencyRef": {"value": cur},
        "MetaData": meta(a.created, a.updated),
    })
}

fn render_vendor(v: &QboVendor, realm: &QboRealm, cur: &str) -> Value {
    let balance: i64 = realm
        .bills
        .iter()
        .filter(|b| b.vendor_id == v.id)
        .map(|b| b.balance_cents)
        .sum();
    json!({
        "Id": v.id, "SyncToken": "0", "domain": "QBO", "sparse": false, "DisplayName": v.display_name,
        "CompanyName": v.display_name, "PrintOnCheckName": v.display_name, "Active": v.active,
        "Balance": num(balance), "CurrencyRef": {"value": cur}, "MetaData": meta(v.created, v.updated),
    })
}

fn vendor_ref(realm: &QboRealm, id: &str) -> Value {
    json!({"value": id, "name": realm.vendor(id).map(|v| v.display_name.clone()).unwrap_or_default()})
}

fn account_ref(realm: &QboRealm, id: &str) -> Value {
    let name = realm
        .accounts
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.name.clone())
        .unwrap_or_default();
    json!({"value": id, "name": name})
}

fn render_bill(b: &QboBill, realm: &QboRealm, cur: &str) -> Value {
    let ap = realm
        .account_named("Accounts Payable (A/P)")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let linked: Vec<Value> = realm
        .bill_payments
        .iter()
        .filter(|p| p.lines.iter().any(|l| l.bill_id == b.id))
        .map(|p| json!({"TxnId": p.id, "TxnType": "BillPaymentCheck"}))
        .collect();
    json!({
        "Id": b.id, "SyncToken": b.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "MetaData": meta(b.created, b.updated), "DocNumber": b.doc_number,
        "TxnDate": b.txn_date.to_string(), "DueDate": b.due_date.to_string(),
        "CurrencyRef": {"value": cur, "name": "United States Dollar"},
        "VendorRef": vendor_ref(realm, &b.vendor_id), "APAccountRef": account_ref(realm, &ap),
        "TotalAmt": num(b.total_cents), "Balance": num(b.balance_cents), "LinkedTxn": linked,
        "Line": [{
            "Id": "1", "LineNum": 1, "Description": b.description, "Amount": num(b.total_cents),
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {"AccountRef": account_ref(realm, &b.expense_account_id), "BillableStatus": "NotBillable"},
        }],
    })
}

pub(super) fn render_bill_payment(p: &QboBillPayment, realm: &QboRealm, cur: &str) -> Value {
    let ap = realm
        .account_named("Accounts Payable (A/P)")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let mut v = json!({
        "Id": p.id, "SyncToken": p.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "MetaData": meta(p.created, p.updated), "TxnDate": p.txn_date.to_string(),
        "CurrencyRef": {"value": cur, "name": "United States Dollar"},
        "VendorRef": vendor_ref(realm, &p.vendor_id), "APAccountRef": account_ref(realm, &ap),
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": account_ref(realm, &p.bank_account_id), "PrintStatus": "NotSet"},
        "TotalAmt": num(p.total_cents),
        "Line": p.lines.iter().map(|l| json!({"Amount": num(l.amount_cents), "LinkedTxn": [{"TxnId": l.bill_id, "TxnType": "Bill"}]})).collect::<Vec<_>>(),
    });
    if let Some(n) = &p.private_note {
        v["PrivateNote"] = json!(n);
    }
    if let Some(d) = &p.doc_number {
        v["DocNumber"] = json!(d);
    }
    v
}

/// Canonical entity names the simulator serves.
pub(super) fn entity_name(s: &str) -> Option<&'static str> {
    ["Bill", "BillPayment", "Vendor", "Account"]
        .into_iter()
        .find(|e| e.eq_ignore_ascii_case(s))
}

pub(super) fn render_all(c: &SimClient, entity: &str) -> Vec<Value> {
    let (realm, cur) = (&c.qbo, c.currency.as_str());
    match entity {
        "Bill" => realm
            .bills
            .iter()
            .map(|b| render_bill(b, realm, cur))
            .collect(),
        "BillPayment" => realm
            .bill_payments
            .iter()
            .map(|p| render_bill_payment(p, realm, cur))
            .collect(),
        "Vendor" => realm
            .vendors
            .iter()
            .map(|v| render_vendor(v, realm, cur))
            .collect(),
        "Account" => realm
            .accounts
            .iter()
            .map(|a| render_account(a, cur))
            .collect(),
        _ => vec![],
    }
}
