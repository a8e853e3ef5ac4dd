//! Rendering of simulator records as Ramp JSON (vendors, bills, money as
//! integer minor units) and Ramp's keyset pagination with full `next` URLs.

use super::{err, Rejection};
use crate::state::*;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::collections::HashMap;

fn currency_amount(cents: i64, cur: &str) -> Value {
    json!({"amount": cents, "currency_code": cur})
}

/// One page of a keyset-paginated list; `items` are `(id, json)`. `page.next`
/// is a full URL built from the configured base (`url`: the list's own
/// address), carrying the list's filters, the page size and `start`.
pub(super) fn paginate(
    mut items: Vec<(String, Value)>,
    q: &HashMap<String, String>,
    url: &str,
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
            let mut next = reqwest::Url::parse(url).map_err(|_| {
                err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "DEVELOPER_0500",
                    "bad configured base URL",
                    None,
                )
            })?;
            {
                let mut filters: Vec<(&String, &String)> = q
                    .iter()
                    .filter(|(k, _)| *k != "start" && *k != "page_size")
                    .collect();
                filters.sort();
                let mut qp = next.query_pairs_mut();
                qp.append_pair("page_size", &page_size.to_string());
                for (k, v) in filters {
                    qp.append_pair(k, v);
                }
                qp.append_pair("start", last);
            }
            Value::String(next.to_string())
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

/// Rendered the way Ramp's `Bill` schema lists every field: what the world
/// has no data for is present and empty (null, `[]`), as a real business
/// without accounting field selections or inventory lines sees it.
pub(super) fn render_bill(c: &SimClient, b: &RampBillRec, detail: bool) -> Value {
    let cur = c.currency.as_str();
    let vendor = c.ramp.vendors.iter().find(|v| v.id == b.vendor_id);
    let details = match &b.manual_payment_method {
        Some(how) => json!({
            "schema_type": "ManualPaymentDetailsSchema",
            "manual_payment_method": how,
        }),
        None => json!({
            "schema_type": "VendorPaymentDetailsSchema",
            "approval_status": "APPROVED",
            "payment_arrival_date": b.payment_arrival_date.to_string(),
            "source_bank_account_id": b.source_bank_account_id,
            "vendor_account_id": b.vendor_account_id,
        }),
    };
    let mut payment = json!({
        "amount": currency_amount(b.amount_cents, cur),
        "payment_method": b.payment_method,
        "payment_date": b.payment_date.map(|d| d.to_string()),
        "effective_date": b.payment_date.map(|d| d.to_string()),
        "details": details,
    });
    if detail {
        payment["trace_id"] = match &b.trace_id {
            Some(t) => json!({"descriptor": "RAMP BILLPAY", "trace_id": t}),
            None => Value::Null,
        };
    }
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let synced = b.status == RampStatus::Paid && b.manual_payment_method.is_none();
    json!({
        "id": b.id,
        "remote_id": b.remote_id,
        "status": b.status.as_str(),
        "approval_status": "APPROVED",
        "amount": currency_amount(b.amount_cents, cur),
        "invoice_number": b.invoice_number,
        "invoice_urls": [],
        "issued_at": b.issued_at.to_string(),
        "due_at": b.due_at.to_string(),
        "created_at": time(b.created_at),
        "paid_at": b.paid_at.map(time),
        "accounting_date": b.issued_at.to_string(),
        "posting_date": b.posting_date.map(|d| d.to_string()),
        "archived_at": b.archived_at.map(time),
        "memo": b.memo,
        "vendor_memo": null,
        "entity_id": b.entity_id,
        "vendor_contact_id": b.vendor_contact_id,
        "vendor": vendor.map(|v| json!({
            "id": v.id, "name": v.name, "remote_code": null,
            "remote_id": v.accounting_vendor_remote_id, "remote_name": v.name, "type": "BUSINESS",
        })),
        "bill_owner": bill_owner(c),
        "line_items": b.line_items.iter().map(|(a, m)| json!({
            "amount": currency_amount(*a, cur), "memo": m, "accounting_field_selections": [],
        })).collect::<Vec<_>>(),
        "inventory_line_items": [],
        "accounting_field_selections": [],
        // Bills are in the entity's currency: the rate is one.
        "fx_conversion_rate": "1.0",
        "sync_status": if synced { "BILL_AND_PAYMENT_SYNCED" } else { "NOT_SYNCED" },
        "deep_link_url": format!("https://app.ramp.com/bill-pay/bills/{}", b.id),
        "payment": payment,
    })
}

/// The business's bill owner: one person per business, with a stable id
/// derived from the business (the world has no Ramp users of its own).
fn bill_owner(c: &SimClient) -> Value {
    use sha2::{Digest, Sha256};
    let h = hex::encode(Sha256::digest(format!("bill-owner:{}", c.ramp.business_id)));
    let id = format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    );
    json!({"id": id, "first_name": "Avery", "last_name": "Controller"})
}
