//! Rendering of simulator records as Ramp JSON (vendors, bills, money as
//! integer minor units) and Ramp's keyset pagination with full `next` URLs.

use super::{err, Rejection};
use crate::sim_state::*;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

pub(super) fn currency_amount(cents: i64, cur: &str) -> Value {
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

/// Every field of Ramp's `Vendor` schema (rails.md §2.5). What the world has
/// no data for (addresses, tax classification, merchant, category) is
/// present and null. Spend is the vendor's paid bills, windowed at `now`.
pub(super) fn render_vendor(c: &SimClient, v: &RampVendorRec, now: DateTime<Utc>) -> Value {
    let paid: Vec<(DateTime<Utc>, i64)> = c
        .ramp
        .bills
        .iter()
        .filter(|b| b.vendor_id == v.id && b.status == RampStatus::Paid)
        .filter_map(|b| b.paid_at.map(|t| (t, b.amount_cents)))
        .collect();
    let since = |from: Option<DateTime<Utc>>| -> Value {
        let sum = paid
            .iter()
            .filter(|(t, _)| from.is_none_or(|f| *t >= f) && *t <= now)
            .map(|(_, a)| a)
            .sum();
        currency_amount(sum, &c.currency)
    };
    let year_start = now
        .date_naive()
        .with_ordinal(1)
        .map(|d| d.and_time(NaiveTime::MIN).and_utc());
    let remote =
        (!v.accounting_vendor_remote_id.is_empty()).then_some(&v.accounting_vendor_remote_id);
    json!({
        "id": v.id, "name": v.name, "name_legal": v.name, "is_active": true,
        "is_deletable": deletable(c, v),
        "country": v.country, "state": v.state, "address": null, "tax_address": null,
        "accounting_vendor_remote_id": remote,
        "contacts": [v.contact_id], "vendor_owner_id": v.vendor_owner_id, "vendor_type": "BUSINESS",
        "billing_frequency": null, "federal_tax_classification": null, "merchant_id": null,
        "sk_category_id": null, "sk_category_name": null,
        "total_spend_all_time": since(None),
        "total_spend_last_30_days": since(Some(now - Duration::days(30))),
        "total_spend_last_365_days": since(Some(now - Duration::days(365))),
        "total_spend_ytd": since(year_start),
        "created_at": v.created_at.to_rfc3339(),
    })
}

/// Only a vendor made through the API and never billed can be deleted.
pub(super) fn deletable(c: &SimClient, v: &RampVendorRec) -> bool {
    v.via_api && !c.ramp.bills.iter().any(|b| b.vendor_id == v.id)
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
    json!({"id": bill_owner_id(c), "first_name": "Avery", "last_name": "Controller"})
}

/// The id of the business's one user, its bill owner.
pub(super) fn bill_owner_id(c: &SimClient) -> String {
    use sha2::{Digest, Sha256};
    let h = hex::encode(Sha256::digest(format!("bill-owner:{}", c.ramp.business_id)));
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
