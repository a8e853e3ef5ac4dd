//! A fixture of the Stripe Dashboard's "Payments → Export"
//! (`unified_payments.csv`) for an account's charges (rails.md §4.9, §6.4).
//!
//! Stripe documents no API for this file; its headers are known only from
//! third-party importers (rails.md §7.9). This writes the 23-column default
//! export they describe — Title Case headers, decimal major-unit amounts,
//! newest first — plus one `<key> (metadata)` column per metadata key, so
//! an importer can be tested against the shape a person downloads.

use super::data::AccountData;
use super::payments::fee;
use super::reporting::{cell, money, s as text};
use chrono::DateTime;
use serde_json::Value;
use std::collections::BTreeSet;

/// The default export's columns, in order.
pub const COLUMNS: [&str; 23] = [
    "ID",
    "Created date (UTC)",
    "Amount",
    "Amount Refunded",
    "Currency",
    "Captured",
    "Converted Amount",
    "Converted Amount Refunded",
    "Converted Currency",
    "Decline Reason",
    "Description",
    "Fee",
    "Refunded date (UTC)",
    "Statement Descriptor",
    "Status",
    "Seller Message",
    "Taxes On Fee",
    "Card ID",
    "Customer ID",
    "Customer Description",
    "Customer Email",
    "Invoice ID",
    "Transfer",
];

/// The export of every charge of `acct`, newest first.
pub fn unified_payments_csv(acct: &AccountData) -> String {
    let mut charges: Vec<&Value> = acct.charges.iter().collect();
    charges.sort_by_key(|c| std::cmp::Reverse(c["created"].as_i64().unwrap_or(0)));
    let keys: BTreeSet<String> = charges
        .iter()
        .filter_map(|c| c["metadata"].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    let mut header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    header.extend(keys.iter().map(|k| format!("{k} (metadata)")));
    let mut out = header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for c in charges {
        let amount = c["amount"].as_i64().unwrap_or(0);
        let refunded = c["amount_refunded"].as_i64().unwrap_or(0);
        let paid = c["status"] == "succeeded";
        let currency = c["currency"].as_str().unwrap_or("usd").to_lowercase();
        let customer = c["customer"]
            .as_str()
            .and_then(|id| AccountData::find(&acct.customers, id));
        let invoice = c["payment_intent"]
            .as_str()
            .and_then(|pi| acct.invoice_of_pi.get(pi))
            .cloned()
            .unwrap_or_default();
        let created = c["created"]
            .as_i64()
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let status = if !paid {
            "Failed"
        } else if refunded > 0 && refunded >= amount {
            "Refunded"
        } else {
            "Paid"
        };
        let mut row: Vec<String> = vec![
            text(&c["id"]),
            created,
            money(amount),
            money(refunded),
            currency.clone(),
            text(&c["captured"]),
            money(amount),
            money(refunded),
            currency,
            text(&c["outcome"]["reason"]),
            text(&c["description"]),
            money(if paid { fee(amount) } else { 0 }),
            String::new(),
            String::new(),
            status.to_owned(),
            text(&c["outcome"]["seller_message"]),
            money(0),
            text(&c["payment_method"]),
            text(&c["customer"]),
            customer.map(|v| text(&v["name"])).unwrap_or_default(),
            customer.map(|v| text(&v["email"])).unwrap_or_default(),
            invoice,
            String::new(),
        ];
        row.extend(keys.iter().map(|k| text(&c["metadata"][k.as_str()])));
        out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// `GET /sandbox/control/stripe/unified_payments?account=acct_…` (sandbox
/// control): the account's export as the Dashboard would download it.
pub(crate) async fn control(
    axum::extract::State(sb): axum::extract::State<crate::Sandbox>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let Some(account) = q.get("account") else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": "account=acct_… is required"})),
        )
            .into_response();
    };
    let st = sb.inner.state.lock().await;
    match st.stripe.accounts.get(account) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"unified_payments.csv\"",
                ),
            ],
            unified_payments_csv(a),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "no such Stripe account"})),
        )
            .into_response(),
    }
}
