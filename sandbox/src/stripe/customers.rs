//! Customers (minimal): create, retrieve, list (`email=` filter).

use super::call::{Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::page;
use serde_json::{json, Map, Value};

pub(crate) fn create(c: &mut Call) -> Res {
    c.allow(&["email", "name", "description", "metadata", "phone"])?;
    let id = c.acct.id("cus_");
    let v = json!({
        "id": id, "object": "customer", "address": null, "balance": 0,
        "created": c.ts(), "currency": null, "default_source": null,
        "delinquent": false, "description": c.str("description")?,
        "email": c.str("email")?, "invoice_prefix": id[4..12].to_ascii_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false, "metadata": c.metadata()?.unwrap_or_else(Map::new),
        "name": c.str("name")?, "phone": c.str("phone")?,
        "preferred_locales": [], "shipping": null, "tax_exempt": "none",
        "test_clock": null,
    });
    c.acct.customers.push(v.clone());
    c.acct.event("customer.created", &v, None, c.ts());
    Ok(v)
}

pub(crate) fn retrieve(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.customers, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("customer", c.id(), "id"))
}

pub(crate) fn list(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "email",
    ])?;
    let email = c.str("email")?;
    let items: Vec<&Value> = c
        .acct
        .customers
        .iter()
        .filter(|v| email.as_ref().is_none_or(|e| v["email"] == e.as_str()))
        .collect();
    page(c, items, "/v1/customers")
}
