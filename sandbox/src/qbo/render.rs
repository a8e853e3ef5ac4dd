//! Rendering of simulator records as QBO JSON entities (`Bill`,
//! `BillPayment`, `Vendor`, `Account`, `Customer`, `Invoice`, `Payment`,
//! `CompanyInfo`), with times local to the company's time zone.

use super::tz::local_time;
use crate::sim_state::*;
use crate::wire::decimal_number as num;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// A time as the realm's company answers it (local, with its offset).
pub(super) fn qtime(realm: &QboRealm, t: DateTime<Utc>) -> String {
    local_time(&realm.time_zone, t)
}

fn meta(realm: &QboRealm, created: DateTime<Utc>, updated: DateTime<Utc>) -> Value {
    json!({"CreateTime": qtime(realm, created), "LastUpdatedTime": qtime(realm, updated)})
}

fn render_account(a: &QboAccount, realm: &QboRealm, cur: &str) -> Value {
    json!({
        "Id": a.id, "SyncToken": a.sync_token.to_string(), "domain": "QBO", "sparse": false, "Name": a.name, "FullyQualifiedName": a.name,
        "AccountType": a.account_type, "AccountSubType": a.account_sub_type, "Classification": a.classification,
        "Active": true, "SubAccount": false, "CurrentBalance": num(a.current_balance_cents),
        "CurrentBalanceWithSubAccounts": num(a.current_balance_cents), "CurrencyRef": {"value": cur},
        "MetaData": meta(realm, a.created, a.updated),
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
        "Id": v.id, "SyncToken": v.sync_token.to_string(), "domain": "QBO", "sparse": false, "DisplayName": v.display_name,
        "CompanyName": v.display_name, "PrintOnCheckName": v.display_name, "Active": v.active,
        "Balance": num(balance), "CurrencyRef": {"value": cur}, "MetaData": meta(realm, v.created, v.updated),
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
        "MetaData": meta(realm, b.created, b.updated), "DocNumber": b.doc_number,
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
        "MetaData": meta(realm, p.created, p.updated), "TxnDate": p.txn_date.to_string(),
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
    ENTITIES.into_iter().find(|e| e.eq_ignore_ascii_case(s))
}

pub(super) const ENTITIES: [&str; 8] = [
    "Bill",
    "BillPayment",
    "Vendor",
    "Account",
    "Customer",
    "Invoice",
    "Payment",
    "CompanyInfo",
];

fn customer_ref(realm: &QboRealm, id: &str) -> Value {
    let name = realm
        .sales
        .customers
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.display_name.clone())
        .unwrap_or_default();
    json!({"value": id, "name": name})
}

fn render_customer(c: &QboCustomer, realm: &QboRealm, cur: &str) -> Value {
    let balance: i64 = realm
        .sales
        .invoices
        .iter()
        .filter(|i| i.customer_id == c.id)
        .map(|i| i.balance_cents)
        .sum();
    json!({
        "Id": c.id, "SyncToken": c.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "DisplayName": c.display_name, "CompanyName": c.display_name, "PrintOnCheckName": c.display_name,
        "FullyQualifiedName": c.display_name, "Active": c.active, "Job": false, "BillWithParent": false,
        "Balance": num(balance), "BalanceWithJobs": num(balance), "CurrencyRef": {"value": cur},
        "MetaData": meta(realm, c.created, c.updated),
    })
}

fn render_invoice(i: &QboInvoice, realm: &QboRealm, cur: &str) -> Value {
    let linked: Vec<Value> = realm
        .sales
        .payments
        .iter()
        .filter(|p| p.lines.iter().any(|l| l.invoice_id == i.id))
        .map(|p| json!({"TxnId": p.id, "TxnType": "Payment"}))
        .collect();
    let mut lines: Vec<Value> = i
        .lines
        .iter()
        .enumerate()
        .map(|(n, l)| {
            let mut v = json!({
                "Id": (n + 1).to_string(), "LineNum": n + 1, "Amount": num(l.amount_cents),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1", "name": "Services"}},
            });
            if let Some(d) = &l.description {
                v["Description"] = json!(d);
            }
            v
        })
        .collect();
    lines.push(json!({"Amount": num(i.total_cents), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}));
    let mut v = json!({
        "Id": i.id, "SyncToken": i.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "MetaData": meta(realm, i.created, i.updated), "TxnDate": i.txn_date.to_string(),
        "CurrencyRef": {"value": cur, "name": "United States Dollar"},
        "CustomerRef": customer_ref(realm, &i.customer_id), "LinkedTxn": linked, "Line": lines,
        "TotalAmt": num(i.total_cents), "Balance": num(i.balance_cents), "HomeBalance": num(i.balance_cents),
        "EmailStatus": "NotSet", "PrintStatus": "NotSet", "AllowOnlinePayment": false,
    });
    if let Some(d) = i.due_date {
        v["DueDate"] = json!(d.to_string());
    }
    if let Some(d) = &i.doc_number {
        v["DocNumber"] = json!(d);
    }
    if let Some(n) = &i.private_note {
        v["PrivateNote"] = json!(n);
    }
    v
}

fn render_payment(p: &QboPayment, realm: &QboRealm, cur: &str) -> Value {
    let applied: i64 = p.lines.iter().map(|l| l.amount_cents).sum();
    let mut v = json!({
        "Id": p.id, "SyncToken": p.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "MetaData": meta(realm, p.created, p.updated), "TxnDate": p.txn_date.to_string(),
        "CurrencyRef": {"value": cur, "name": "United States Dollar"},
        "CustomerRef": customer_ref(realm, &p.customer_id), "TotalAmt": num(p.total_cents),
        "UnappliedAmt": num(p.total_cents - applied), "ProcessPayment": false,
        "Line": p.lines.iter().map(|l| json!({"Amount": num(l.amount_cents), "LinkedTxn": [{"TxnId": l.invoice_id, "TxnType": "Invoice"}]})).collect::<Vec<_>>(),
    });
    if let Some(n) = &p.private_note {
        v["PrivateNote"] = json!(n);
    }
    if let Some(n) = &p.payment_ref_num {
        v["PaymentRefNum"] = json!(n);
    }
    v
}

/// The company itself; its Id is the realm id.
pub(super) fn render_company(c: &SimClient) -> Value {
    let realm = &c.qbo;
    let zone = if realm.time_zone.is_empty() {
        super::tz::DEFAULT_ZONE
    } else {
        realm.time_zone.as_str()
    };
    json!({
        "Id": realm.realm_id, "SyncToken": "0", "domain": "QBO", "sparse": false,
        "CompanyName": c.name, "LegalName": c.name, "Country": "US",
        "CompanyAddr": {"Id": "1", "Line1": "1 Main St", "City": "Springfield", "CountrySubDivisionCode": "CA", "PostalCode": "94000", "Country": "US"},
        "FiscalYearStartMonth": "January", "CompanyStartDate": realm.created_at.date_naive().to_string(),
        "SupportedLanguages": "en", "DefaultTimeZone": zone,
        "NameValue": [{"Name": "NeoEnabled", "Value": "true"}, {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"}],
        "MetaData": meta(realm, realm.created_at, realm.created_at),
    })
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
            .map(|a| render_account(a, realm, cur))
            .collect(),
        "Customer" => realm
            .sales
            .customers
            .iter()
            .map(|x| render_customer(x, realm, cur))
            .collect(),
        "Invoice" => realm
            .sales
            .invoices
            .iter()
            .map(|x| render_invoice(x, realm, cur))
            .collect(),
        "Payment" => realm
            .sales
            .payments
            .iter()
            .map(|x| render_payment(x, realm, cur))
            .collect(),
        "CompanyInfo" => vec![render_company(c)],
        _ => vec![],
    }
}
