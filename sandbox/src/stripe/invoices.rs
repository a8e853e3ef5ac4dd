//! Invoices and invoice items: a draft (with lines from invoice items or
//! `add_lines`) is finalized to `open` (number, `due_date`), then `paid`
//! (by a card payment or out of band), `void` or `uncollectible`.
//! `amount_remaining` = `amount_due` − `amount_paid`. The pinned API version
//! has no `charge` / `payment_intent` / `paid` on the Invoice.

use super::call::{merge_metadata, Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::{page, time_filter};
use super::payments;
use serde_json::{json, Map, Value};

fn customer(c: &Call, id: &str) -> Result<Value, StripeError> {
    AccountData::find(&c.acct.customers, id)
        .cloned()
        .ok_or_else(|| StripeError::no_such("customer", id, "customer"))
}

pub(crate) fn create(c: &mut Call) -> Res {
    c.allow(&[
        "customer",
        "collection_method",
        "days_until_due",
        "due_date",
        "description",
        "metadata",
        "currency",
        "auto_advance",
        "pending_invoice_items_behavior",
    ])?;
    let cus = customer(c, &c.req_str("customer")?)?;
    let method = c
        .str("collection_method")?
        .unwrap_or_else(|| "charge_automatically".into());
    let days = c.int("days_until_due")?;
    let due = c.int("due_date")?;
    match method.as_str() {
        "charge_automatically" if days.is_some() || due.is_some() => {
            return Err(StripeError::invalid(
                "Invoices with collection_method `charge_automatically` cannot have a due date; set collection_method=send_invoice.",
                Some(if days.is_some() { "days_until_due" } else { "due_date" }),
            ))
        }
        "charge_automatically" => {}
        "send_invoice" if days.is_none() && due.is_none() => {
            return Err(StripeError::invalid(
                "Invoices with collection_method `send_invoice` need either days_until_due or due_date.",
                Some("days_until_due"),
            ))
        }
        "send_invoice" => {}
        other => {
            return Err(StripeError::invalid(
                &format!("Invalid collection_method: must be one of charge_automatically or send_invoice (got {other})"),
                Some("collection_method"),
            ))
        }
    }
    let id = c.acct.id("in_");
    let v = json!({
        "id": id, "object": "invoice", "account_country": "US",
        "amount_due": 0, "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": 0,
        "amount_shipping": 0, "attempt_count": 0, "attempted": false,
        "auto_advance": c.bool("auto_advance")?.unwrap_or(false),
        "billing_reason": "manual", "collection_method": method,
        "created": c.ts(), "currency": c.currency()?.unwrap_or_else(|| "usd".into()),
        "customer": cus["id"], "customer_email": cus["email"], "customer_name": cus["name"],
        "days_until_due": days, "description": c.str("description")?,
        "due_date": due, "effective_at": null, "ending_balance": null,
        "hosted_invoice_url": null, "invoice_pdf": null,
        "lines": {"object": "list", "data": [], "has_more": false, "total_count": 0, "url": format!("/v1/invoices/{id}/lines")},
        "livemode": false, "metadata": c.metadata()?.unwrap_or_else(Map::new),
        "next_payment_attempt": null, "number": null, "period_end": c.ts(), "period_start": c.ts(),
        "starting_balance": 0, "status": "draft",
        "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
        "subtotal": 0, "total": 0, "webhooks_delivered_at": null,
    });
    c.acct.invoices.push(v.clone());
    c.acct.event("invoice.created", &v, None, c.ts());
    Ok(v)
}

/// Apply `f` to the invoice, record `event` (with previous attributes),
/// answer the new invoice.
fn update(c: &mut Call, id: &str, event: &str, f: impl FnOnce(&mut Value)) -> Res {
    let at = c.ts();
    let inv = AccountData::find_mut(&mut c.acct.invoices, id)
        .ok_or_else(|| StripeError::no_such("invoice", id, "id"))?;
    let before = inv.clone();
    f(inv);
    let after = inv.clone();
    c.acct.event(event, &after, Some(&before), at);
    Ok(after)
}

fn get(c: &Call, id: &str) -> Result<Value, StripeError> {
    AccountData::find(&c.acct.invoices, id)
        .cloned()
        .ok_or_else(|| StripeError::no_such("invoice", id, "id"))
}

/// Add a line to a draft invoice and recompute its totals.
fn add_line(c: &mut Call, inv_id: &str, line: Value) -> Result<(), StripeError> {
    let inv = AccountData::find_mut(&mut c.acct.invoices, inv_id)
        .ok_or_else(|| StripeError::no_such("invoice", inv_id, "invoice"))?;
    if inv["status"] != "draft" {
        return Err(StripeError::state(&format!(
            "You can only add lines to a draft invoice; {inv_id} is {}.",
            inv["status"].as_str().unwrap_or("")
        )));
    }
    if let Some(a) = inv["lines"]["data"].as_array_mut() {
        a.push(line);
    }
    let total: i64 = inv["lines"]["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["amount"].as_i64()).sum())
        .unwrap_or(0);
    let n = inv["lines"]["data"].as_array().map_or(0, Vec::len);
    inv["lines"]["total_count"] = json!(n);
    for k in ["subtotal", "total", "amount_due", "amount_remaining"] {
        inv[k] = json!(total);
    }
    Ok(())
}

fn line_of(c: &mut Call, inv: &str, item: &Value) -> Value {
    let id = c.acct.id("il_");
    json!({
        "id": id, "object": "line_item", "amount": item["amount"], "currency": item["currency"],
        "description": item["description"], "discountable": true, "discounts": [],
        "invoice": inv, "livemode": false, "metadata": item["metadata"],
        "parent": {"type": "invoice_item_details", "invoice_item_details": {"invoice_item": item["id"], "proration": false}, "subscription_item_details": null},
        "period": {"start": item["created"], "end": item["created"]},
        "pricing": null, "quantity": 1, "taxes": [],
    })
}

pub(crate) fn create_item(c: &mut Call) -> Res {
    c.allow(&[
        "customer",
        "amount",
        "currency",
        "description",
        "invoice",
        "metadata",
    ])?;
    let cus = customer(c, &c.req_str("customer")?)?;
    let amount = c
        .int("amount")?
        .ok_or_else(|| StripeError::missing("amount"))?;
    let inv_id = c.str("invoice")?;
    let currency = match &inv_id {
        Some(i) => {
            let inv = AccountData::find(&c.acct.invoices, i)
                .ok_or_else(|| StripeError::no_such("invoice", i, "invoice"))?;
            if inv["customer"] != cus["id"] {
                return Err(StripeError::invalid(
                    "The invoice belongs to another customer.",
                    Some("invoice"),
                ));
            }
            inv["currency"].as_str().unwrap_or("usd").to_owned()
        }
        None => c
            .currency()?
            .ok_or_else(|| StripeError::missing("currency"))?,
    };
    let id = c.acct.id("ii_");
    let item = json!({
        "id": id, "object": "invoiceitem", "amount": amount, "currency": currency,
        "customer": cus["id"], "date": c.ts(), "created": c.ts(), "description": c.str("description")?,
        "discountable": true, "invoice": inv_id, "livemode": false,
        "metadata": c.metadata()?.unwrap_or_else(Map::new),
        "period": {"start": c.ts(), "end": c.ts()}, "proration": false, "quantity": 1,
    });
    if let Some(i) = &inv_id {
        let line = line_of(c, i, &item);
        add_line(c, i, line)?;
    }
    c.acct.invoice_items.push(item.clone());
    Ok(item)
}

/// `POST /v1/invoices/{id}/add_lines` with `lines[i][amount|description|metadata]`.
pub(crate) fn add_lines(c: &mut Call) -> Res {
    c.allow(&["lines", "metadata"])?;
    let id = c.id().to_owned();
    let inv = get(c, &id)?;
    let lines = c.params["lines"]
        .as_array()
        .cloned()
        .ok_or_else(|| StripeError::missing("lines"))?;
    for (i, l) in lines.iter().enumerate() {
        let amount = l["amount"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| StripeError::missing(&format!("lines[{i}][amount]")))?;
        let iid = c.acct.id("ii_");
        let item = json!({
            "id": iid, "object": "invoiceitem", "amount": amount, "currency": inv["currency"],
            "customer": inv["customer"], "date": c.ts(), "created": c.ts(),
            "description": l.get("description"), "invoice": id, "livemode": false,
            "metadata": l.get("metadata").cloned().unwrap_or_else(|| json!({})),
        });
        let line = line_of(c, &id, &item);
        add_line(c, &id, line)?;
        c.acct.invoice_items.push(item);
    }
    let after = get(c, &id)?;
    c.acct.event("invoice.updated", &after, Some(&inv), c.ts());
    Ok(after)
}

pub(crate) fn retrieve(c: &mut Call) -> Res {
    c.allow(&[])?;
    get(c, c.id())
}

pub(crate) fn update_fields(c: &mut Call) -> Res {
    c.allow(&["metadata", "description", "auto_advance"])?;
    let id = c.id().to_owned();
    let meta = c.metadata()?;
    let desc = c.str("description")?;
    let auto = c.bool("auto_advance")?;
    update(c, &id, "invoice.updated", |inv| {
        if let Some(m) = meta {
            merge_metadata(&mut inv["metadata"], m);
        }
        if let Some(d) = desc {
            inv["description"] = json!(d);
        }
        if let Some(a) = auto {
            inv["auto_advance"] = json!(a);
        }
    })
}

pub(crate) fn list(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "customer",
        "status",
        "collection_method",
        "due_date",
    ])?;
    let (cus, status, method) = (
        c.str("customer")?,
        c.str("status")?,
        c.str("collection_method")?,
    );
    if let Some(s) = &status {
        if !["draft", "open", "paid", "uncollectible", "void"].contains(&s.as_str()) {
            return Err(StripeError::invalid(
                "Invalid status: must be one of draft, open, paid, uncollectible, or void",
                Some("status"),
            ));
        }
    }
    let mut items = vec![];
    for v in &c.acct.invoices {
        let keep = cus.as_ref().is_none_or(|x| v["customer"] == x.as_str())
            && status.as_ref().is_none_or(|x| v["status"] == x.as_str())
            && method
                .as_ref()
                .is_none_or(|x| v["collection_method"] == x.as_str())
            && time_filter(c, "due_date", v)?;
        if keep {
            items.push(v);
        }
    }
    page(c, items, "/v1/invoices")
}

pub(crate) fn finalize(c: &mut Call) -> Res {
    c.allow(&["auto_advance"])?;
    let id = c.id().to_owned();
    let inv = get(c, &id)?;
    if inv["status"] != "draft" {
        return Err(StripeError::state(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
        ));
    }
    c.acct.invoice_seq += 1;
    let number = format!("{}-{:04}", c.acct.invoice_prefix, c.acct.invoice_seq);
    let now = c.ts();
    let v = update(c, &id, "invoice.finalized", |inv| {
        inv["status"] = json!("open");
        inv["number"] = json!(number);
        inv["status_transitions"]["finalized_at"] = json!(now);
        inv["effective_at"] = json!(now);
        if let (Some(d), true) = (inv["days_until_due"].as_i64(), inv["due_date"].is_null()) {
            inv["due_date"] = json!(now + d * 86_400);
        }
        if inv["amount_due"] == 0 {
            // Nothing to collect: paid at once.
            inv["status"] = json!("paid");
            inv["status_transitions"]["paid_at"] = json!(now);
        }
    })?;
    Ok(v)
}

/// Mark paid with `amount` collected at `at`.
pub(crate) fn mark_paid(acct: &mut AccountData, id: &str, at: i64) -> Option<Value> {
    let inv = AccountData::find_mut(&mut acct.invoices, id)?;
    let before = inv.clone();
    let due = inv["amount_due"].as_i64().unwrap_or(0);
    inv["status"] = json!("paid");
    inv["amount_paid"] = json!(due);
    inv["amount_remaining"] = json!(0);
    inv["attempted"] = json!(true);
    inv["status_transitions"]["paid_at"] = json!(at);
    let after = inv.clone();
    acct.event("invoice.paid", &after, Some(&before), at);
    acct.event("invoice.payment_succeeded", &after, None, at);
    Some(after)
}

pub(crate) fn pay(c: &mut Call) -> Res {
    c.allow(&[
        "payment_method",
        "paid_out_of_band",
        "source",
        "off_session",
        "forgive",
    ])?;
    let id = c.id().to_owned();
    let inv = get(c, &id)?;
    match inv["status"].as_str() {
        Some("open") | Some("uncollectible") => {}
        Some("paid") => {
            return Err(StripeError::invalid("Invoice is already paid", None)
                .with_code("invoice_already_paid"))
        }
        Some(s) => {
            return Err(StripeError::state(&format!(
                "You can only pay an invoice that is open or uncollectible; this one is {s}."
            )))
        }
        None => return Err(StripeError::state("The invoice has no status")),
    }
    if c.bool("paid_out_of_band")? == Some(true) {
        return mark_paid(c.acct, &id, c.ts())
            .ok_or_else(|| StripeError::no_such("invoice", &id, "id"));
    }
    let pm = c
        .str("payment_method")?
        .or_else(|| inv["default_payment_method"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            StripeError::invalid(
                "This customer has no attached payment source or default payment method. Please consider adding a default payment method.",
                None,
            )
        })?;
    let amount = inv["amount_remaining"].as_i64().unwrap_or(0);
    let currency = inv["currency"].as_str().unwrap_or("usd").to_owned();
    let cus = inv["customer"].as_str().unwrap_or("").to_owned();
    let at = c.ts();
    match payments::charge(c.acct, amount, &currency, Some(&cus), &pm, at, Some(&id)) {
        Ok(_) => {
            mark_paid(c.acct, &id, at).ok_or_else(|| StripeError::no_such("invoice", &id, "id"))
        }
        Err(e) => {
            let before = inv.clone();
            if let Some(v) = AccountData::find_mut(&mut c.acct.invoices, &id) {
                v["attempt_count"] = json!(v["attempt_count"].as_i64().unwrap_or(0) + 1);
                v["attempted"] = json!(true);
                let after = v.clone();
                c.acct
                    .event("invoice.payment_failed", &after, Some(&before), at);
            }
            Err(e)
        }
    }
}

pub(crate) fn void(c: &mut Call) -> Res {
    c.allow(&[])?;
    let id = c.id().to_owned();
    let inv = get(c, &id)?;
    if !matches!(inv["status"].as_str(), Some("open") | Some("uncollectible")) {
        return Err(StripeError::state(&format!(
            "You can only void an open or uncollectible invoice; this one is {}.",
            inv["status"].as_str().unwrap_or("")
        )));
    }
    let now = c.ts();
    update(c, &id, "invoice.voided", |inv| {
        inv["status"] = json!("void");
        inv["status_transitions"]["voided_at"] = json!(now);
    })
}

pub(crate) fn mark_uncollectible(c: &mut Call) -> Res {
    c.allow(&[])?;
    let id = c.id().to_owned();
    let inv = get(c, &id)?;
    if inv["status"] != "open" {
        return Err(StripeError::state(&format!(
            "You can only mark an open invoice uncollectible; this one is {}.",
            inv["status"].as_str().unwrap_or("")
        )));
    }
    let now = c.ts();
    update(c, &id, "invoice.marked_uncollectible", |inv| {
        inv["status"] = json!("uncollectible");
        inv["status_transitions"]["marked_uncollectible_at"] = json!(now);
    })
}
