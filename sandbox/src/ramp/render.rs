//! Rendering of simulator records as Ramp JSON (vendors, bills, money as
//! integer minor units) and Ramp's keyset pagination with full `next` URLs.

use super::{err, Rejection};
use crate::state::*;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;

fn currency_amount(cents: i64, cur: &str) -> Value {
    json!({"amount": cents, "currency_code": cur})
}

/// One page of a keyset-paginated list; `items` are `(id, json)`.
pub(super) fn paginate(
    mut items: Vec<(String, Value)>,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
    keep: &[&str],
) -> Result<Value, Rejection> {
    let page_size = match q.get("page_size") {
        None => 20,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (2..=100).contains(&n) => n,
            _ => {
                return Err(Box::new(err(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "DEVELOPER_7001",
                    "Value must be between 2 and 100",
                    Some("page_size"),
                )))
            }
        },
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(start) = q.get("start") {
        items.retain(|(id, _)| id.as_str() > start.as_str());
    }
    let more = items.len() > page_size;
    items.truncate(page_size);
    let next = match (more, items.last()) {
        (true, Some((last, _))) => {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            let mut url = reqwest::Url::parse(&format!(
                "{scheme}://{host}/sandbox/ramp/developer/v1/{path}"
            ))
            .map_err(|_| {
                err(
                    StatusCode::BAD_REQUEST,
                    "DEVELOPER_7000",
                    "bad Host header",
                    None,
                )
            })?;
            {
                let mut qp = url.query_pairs_mut();
                qp.append_pair("page_size", &page_size.to_string());
                for k in keep {
                    if let Some(v) = q.get(*k) {
                        qp.append_pair(k, v);
                    }
                }
                qp.append_pair("start", last);
            }
            Value::String(url.to_string())
        }
        _ => Value::Null,
    };
    Ok(
        json!({"data": items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "page": {"next": next}}),
    )
}

pub(super) fn render_vendor(c: &SimClient, v: &RampVendorRec) -> Value {
    let spent: i64 = c
        .ramp
        .bills
        .iter()
        .filter(|b| b.vendor_id == v.id && b.status == RampStatus::Paid)
        .map(|b| b.amount_cents)
        .sum();
    json!({
        "id": v.id, "name": v.name, "name_legal": v.name, "is_active": true, "is_deletable": false,
        "country": "US", "accounting_vendor_remote_id": v.accounting_vendor_remote_id,
        "contacts": [v.contact_id], "vendor_type": "BUSINESS",
        "total_spend_all_time": currency_amount(spent, &c.currency),
        "created_at": v.created_at.to_rfc3339(),
    })
}

pub(super) fn render_bill(c: &SimClient, b: &RampBillRec, detail: bool) -> Value {
    let cur = c.currency.as_str();
    let vendor = c.ramp.vendors.iter().find(|v| v.id == b.vendor_id);
    let mut payment = json!({
        "amount": currency_amount(b.amount_cents, cur),
        "payment_method": "ACH",
        "payment_date": b.payment_date.map(|d| d.to_string()),
        "effective_date": b.payment_date.map(|d| d.to_string()),
        "details": {
            "schema_type": "VendorPaymentDetailsSchema",
            "approval_status": "APPROVED",
            "payment_arrival_date": b.payment_arrival_date.to_string(),
            "source_bank_account_id": b.source_bank_account_id,
            "vendor_account_id": b.vendor_account_id,
        },
    });
    if detail {
        payment["trace_id"] = match &b.trace_id {
            Some(t) => json!({"descriptor": "RAMP BILLPAY", "trace_id": t}),
            None => Value::Null,
        };
    }
    json!({
        "id": b.id,
        "remote_id": b.remote_id,
        "status": b.status.as_str(),
        "approval_status": "APPROVED",
        "amount": currency_amount(b.amount_cents, cur),
        "invoice_number": b.invoice_number,
        "issued_at": b.issued_at.to_string(),
        "due_at": b.due_at.to_string(),
        "created_at": b.created_at.to_rfc3339(),
        "paid_at": b.paid_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "memo": b.memo,
        "entity_id": b.entity_id,
        "vendor_contact_id": b.vendor_contact_id,
        "vendor": vendor.map(|v| json!({"id": v.id, "name": v.name, "remote_id": v.accounting_vendor_remote_id, "type": "BUSINESS"})),
        "line_items": b.line_items.iter().map(|(a, m)| json!({"amount": currency_amount(*a, cur), "memo": m})).collect::<Vec<_>>(),
        "sync_status": if b.status == RampStatus::Paid { "BILL_AND_PAYMENT_SYNCED" } else { "NOT_SYNCED" },
        "archived_at": null,
        "payment": payment,
    })
}
