//! Ramp vendors (rails.md §2.5): list, get, create, update, delete, and a
//! vendor's bank accounts and contacts.
//!
//! Created vendors are approved at once (the docs say so) and have no bank
//! account until the vendor gives one; the world's vendors come from the
//! ledger and are never deletable. Unknown body fields and query parameters
//! are refused, not ignored.

use super::render::{bill_owner_id, deletable, paginate, render_vendor};
use super::{absent, authed_for, err, invalid, list_url, missing, only_params, Rejection};
use crate::sim_state::*;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/developer/v1/vendors", get(list).post(create))
        .route(
            "/developer/v1/vendors/{id}",
            get(one).patch(update).delete(remove),
        )
        .route("/developer/v1/vendors/{id}/accounts", get(accounts))
        .route(
            "/developer/v1/vendors/{id}/accounts/{account}",
            get(account),
        )
        .route("/developer/v1/vendors/{id}/contacts", get(contacts))
        .route(
            "/developer/v1/vendors/{id}/contacts/{contact}",
            get(contact),
        )
}

fn page(items: Vec<(String, Value)>, q: &HashMap<String, String>, url: &str) -> Response {
    match paginate(items, q, url) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

async fn list(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "vendors:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = only_params(&q, &[]) {
        return *r;
    }
    let c = &st.clients[ci];
    let now = sb.inner.clock.now();
    let items = c
        .ramp
        .vendors
        .iter()
        .map(|v| (v.id.clone(), render_vendor(c, v, now)))
        .collect();
    page(items, &q, &list_url(&sb, "vendors"))
}

async fn one(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "vendors:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    match c.ramp.vendors.iter().find(|v| v.id == id) {
        Some(v) => Json(render_vendor(c, v, sb.inner.clock.now())).into_response(),
        None => absent("Vendor"),
    }
}

/// `ApiVendorBankAccountResource`: no account number, only how it can be
/// paid and whether it is the vendor's default.
fn render_account(c: &SimClient, v: &RampVendorRec) -> Value {
    json!({
        "id": v.account_id, "account_nickname": format!("{} ACH ••{}", v.name, v.account_last_four),
        "currency": c.currency, "is_default": true, "payment_method": "ACH",
    })
}

/// A vendor's one bank account, if it has given one (a vendor made through
/// the API has not).
fn bank_account(v: &RampVendorRec) -> Option<&str> {
    (!v.account_id.is_empty()).then_some(v.account_id.as_str())
}

async fn accounts(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (mut st, ci) = match authed_for(&sb, &headers, "vendors:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = only_params(&q, &[]) {
        return *r;
    }
    let Some(vi) = st.clients[ci].ramp.vendors.iter().position(|v| v.id == id) else {
        return absent("Vendor");
    };
    // The fault: the vendor has just sent new bank details.
    if st.faults.ramp_vendor_bank_change_next > 0
        && bank_account(&st.clients[ci].ramp.vendors[vi]).is_some()
    {
        st.faults.ramp_vendor_bank_change_next -= 1;
        super::vendor_bank::change_account(&mut st, ci, vi);
        sb.persist_logged(&st).await;
    }
    let c = &st.clients[ci];
    let v = &c.ramp.vendors[vi];
    let items = bank_account(v)
        .map(|a| (a.to_owned(), render_account(c, v)))
        .into_iter()
        .collect();
    page(items, &q, &list_url(&sb, &format!("vendors/{id}/accounts")))
}

async fn account(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((id, account)): Path<(String, String)>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "vendors:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    let Some(v) = c.ramp.vendors.iter().find(|v| v.id == id) else {
        return absent("Vendor");
    };
    if bank_account(v) != Some(account.as_str()) {
        return absent("Vendor bank account");
    }
    Json(render_account(c, v)).into_response()
}

/// A vendor's contact. The world's vendors have one accounts-receivable
/// contact with no email on file.
fn render_contact(v: &RampVendorRec) -> Value {
    json!({
        "id": v.contact_id,
        "email": v.contact_email,
        "first_name": v.contact_first_name.as_deref().unwrap_or(if v.via_api { "" } else { "Accounts" }),
        "last_name": v.contact_last_name.as_deref().unwrap_or(if v.via_api { "" } else { "Receivable" }),
    })
}

async fn contacts(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "vendors:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(r) = only_params(&q, &[]) {
        return *r;
    }
    let Some(v) = st.clients[ci].ramp.vendors.iter().find(|v| v.id == id) else {
        return absent("Vendor");
    };
    let items = vec![(v.contact_id.clone(), render_contact(v))];
    page(items, &q, &list_url(&sb, &format!("vendors/{id}/contacts")))
}

async fn contact(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((id, contact)): Path<(String, String)>,
) -> Response {
    let (st, ci) = match authed_for(&sb, &headers, "vendors:read").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(v) = st.clients[ci].ramp.vendors.iter().find(|v| v.id == id) else {
        return absent("Vendor");
    };
    if v.contact_id != contact {
        return absent("Vendor contact");
    }
    Json(render_contact(v)).into_response()
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid("body", "Request body must be a JSON object.")),
    }
}

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> Result<Option<&'a str>, Rejection> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
        Some(_) => Err(invalid(k, "Not a valid string.")),
    }
}

/// ISO 3166-1 alpha-2: two capital letters.
fn country(m: &Map<String, Value>) -> Result<Option<String>, Rejection> {
    match text(m, "country")? {
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Some(c.into())),
        Some(_) => Err(invalid("country", "Not a valid country code.")),
        None => Ok(None),
    }
}

/// The vendor owner must be a user of the business; the world's business
/// has one, its bill owner.
fn owner(c: &SimClient, m: &Map<String, Value>) -> Result<Option<String>, Rejection> {
    match text(m, "vendor_owner_id")? {
        Some(o) if o == bill_owner_id(c) => Ok(Some(o.into())),
        Some(_) => Err(invalid("vendor_owner_id", "User not found.")),
        None => Ok(None),
    }
}

const CREATE_FIELDS: [&str; 7] = [
    "name",
    "country",
    "state",
    "vendor_owner_id",
    "business_vendor_contacts",
    "request_payment_details",
    "request_tax_details",
];

fn validate_create(c: &SimClient, m: &Map<String, Value>) -> Result<RampVendorRec, Rejection> {
    if let Some(k) = m.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return Err(invalid(k, "Unknown field."));
    }
    let name = text(m, "name")?.ok_or_else(|| missing("name"))?;
    let country = country(m)?.ok_or_else(|| missing("country"))?;
    let owner = owner(c, m)?.ok_or_else(|| missing("vendor_owner_id"))?;
    let state = text(m, "state")?.map(str::to_owned);
    for k in ["request_payment_details", "request_tax_details"] {
        if m.get(k).is_some_and(|v| !v.is_boolean()) {
            return Err(invalid(k, "Not a valid boolean."));
        }
    }
    // One contact, an object with an email (the docs name no other shape).
    let contact = match m.get("business_vendor_contacts") {
        None => return Err(missing("business_vendor_contacts")),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(invalid("business_vendor_contacts", "Invalid input type.")),
    };
    if let Some(k) = contact
        .keys()
        .find(|k| !["email", "first_name", "last_name", "phone"].contains(&k.as_str()))
    {
        return Err(invalid(
            "business_vendor_contacts",
            &format!("Unknown field: {k}."),
        ));
    }
    let email = text(contact, "email")
        .map_err(|_| invalid("business_vendor_contacts", "Not a valid email."))?
        .filter(|e| e.contains('@'))
        .ok_or_else(|| {
            invalid(
                "business_vendor_contacts",
                "Missing data for required field: email.",
            )
        })?;
    let part = |k: &str| -> Result<Option<String>, Rejection> {
        text(contact, k)
            .map(|o| o.map(str::to_owned))
            .map_err(|_| invalid("business_vendor_contacts", &format!("Not a valid {k}.")))
    };
    Ok(RampVendorRec {
        id: String::new(),
        name: name.into(),
        accounting_vendor_remote_id: String::new(),
        contact_id: String::new(),
        account_id: String::new(),
        account_last_four: String::new(),
        created_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        country,
        state,
        vendor_owner_id: Some(owner),
        contact_email: Some(email.into()),
        contact_first_name: part("first_name")?,
        contact_last_name: part("last_name")?,
        via_api: true,
    })
}

/// `POST /developer/v1/vendors`: 200 with the vendor (the docs give no
/// other status), approved at once, without a bank account.
async fn create(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci) = match authed_for(&sb, &headers, "vendors:write").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rec = match body_object(&body).and_then(|m| validate_create(&st.clients[ci], &m)) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let v = RampVendorRec {
        id: uuid::Uuid::new_v4().to_string(),
        contact_id: uuid::Uuid::new_v4().to_string(),
        created_at: sb.inner.clock.now(),
        ..rec
    };
    st.clients[ci].ramp.vendors.push(v.clone());
    sb.persist_logged(&st).await;
    Json(render_vendor(&st.clients[ci], &v, sb.inner.clock.now())).into_response()
}

/// `PATCH /developer/v1/vendors/{id}`: the vendor's name, country, state or
/// owner; any other field is refused.
async fn update(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (mut st, ci) = match authed_for(&sb, &headers, "vendors:write").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(vi) = st.clients[ci].ramp.vendors.iter().position(|v| v.id == id) else {
        return absent("Vendor");
    };
    let m = match body_object(&body) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let c = &st.clients[ci];
    let mut v = c.ramp.vendors[vi].clone();
    let applied = (|| -> Result<(), Rejection> {
        if let Some(k) = m
            .keys()
            .find(|k| !["name", "country", "state", "vendor_owner_id"].contains(&k.as_str()))
        {
            return Err(invalid(k, "Unknown field."));
        }
        if let Some(n) = text(&m, "name")? {
            n.clone_into(&mut v.name);
        }
        if let Some(cc) = country(&m)? {
            v.country = cc;
        }
        if let Some(s) = text(&m, "state")? {
            v.state = Some(s.into());
        }
        if let Some(o) = owner(c, &m)? {
            v.vendor_owner_id = Some(o);
        }
        Ok(())
    })();
    if let Err(r) = applied {
        return *r;
    }
    st.clients[ci].ramp.vendors[vi] = v;
    sb.persist_logged(&st).await;
    let c = &st.clients[ci];
    Json(render_vendor(c, &c.ramp.vendors[vi], sb.inner.clock.now())).into_response()
}

/// `DELETE /developer/v1/vendors/{id}`: 204, only while `is_deletable`.
async fn remove(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (mut st, ci) = match authed_for(&sb, &headers, "vendors:write").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    let Some(vi) = c.ramp.vendors.iter().position(|v| v.id == id) else {
        return absent("Vendor");
    };
    if !deletable(c, &c.ramp.vendors[vi]) {
        return err(
            StatusCode::BAD_REQUEST,
            "DEVELOPER_7000",
            "Vendor cannot be deleted",
            None,
        );
    }
    st.clients[ci].ramp.vendors.remove(vi);
    sb.persist_logged(&st).await;
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
#[path = "vendors/http_tests.rs"]
pub(crate) mod http_tests;
