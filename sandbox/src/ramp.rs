//! The Ramp simulator: `/developer/v1/{entities,vendors,bills}`.

use super::state::*;
use super::wire::{bearer_token, currency_code, decimal_text, minor_exponent, parse_minor};
use super::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::MutexGuard;

pub const RATE_LIMIT: usize = 200;
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/developer/v1/entities", get(entities))
        .route("/developer/v1/vendors", get(vendors))
        .route("/developer/v1/vendors/{id}/accounts", get(vendor_accounts))
        .route("/developer/v1/bills", get(list_bills).post(create_bill))
        .route("/developer/v1/bills/{id}", get(get_bill))
        .layer(axum::middleware::map_response(add_trace_id))
}

async fn add_trace_id(mut res: Response) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-trace-id", v);
    }
    res
}

/// The `error_v2` + `error` envelope.
fn err(status: StatusCode, code: &str, msg: &str, field: Option<&str>) -> Response {
    let (info, legacy) = match field {
        Some(f) => (json!({ f: [msg] }), json!({ f: [msg] })),
        None => (json!({}), json!({ "message": msg })),
    };
    let body = json!({
        "error_v2": {"error_code": code, "additional_info": info, "notes": "", "message": msg},
        "error": legacy,
    });
    (status, Json(body)).into_response()
}

/// Validation helpers return a boxed response: it is large, and only the
/// error path carries it.
type Rejection = Box<Response>;

fn invalid(field: &str, msg: &str) -> Rejection {
    Box::new(err(
        StatusCode::UNPROCESSABLE_ENTITY,
        "DEVELOPER_7000",
        msg,
        Some(field),
    ))
}

fn missing(field: &str) -> Rejection {
    Box::new(err(
        StatusCode::BAD_REQUEST,
        "DEVELOPER_7000",
        "Missing data for required field.",
        Some(field),
    ))
}

/// Check the Bearer token and the rate limit; hand back the locked state and
/// the client's index.
async fn authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
) -> Result<(MutexGuard<'a, SimState>, usize), Response> {
    let token = bearer_token(headers);
    let unauthorized = || {
        err(
            StatusCode::UNAUTHORIZED,
            "DEVELOPER_0401",
            "Invalid or expired access token",
            None,
        )
    };
    let Some(token) = token else {
        return Err(unauthorized());
    };
    let st = sb.inner.state.lock().await;
    let Some(ci) = st.clients.iter().position(|c| c.ramp.access_token == token) else {
        return Err(unauthorized());
    };
    let business = st.clients[ci].ramp.business_id.clone();
    let limited = {
        let mut hits = sb
            .inner
            .ramp_hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let q = hits.entry(business).or_default();
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            q.pop_front();
        }
        if q.len() >= RATE_LIMIT {
            true
        } else {
            q.push_back(now);
            false
        }
    };
    if limited {
        return Err(err(
            StatusCode::TOO_MANY_REQUESTS,
            "DEVELOPER_0429",
            "Rate limit exceeded",
            None,
        ));
    }
    Ok((st, ci))
}

fn currency_amount(cents: i64, cur: &str) -> Value {
    json!({"amount": cents, "currency_code": cur})
}

/// One page of a keyset-paginated list; `items` are `(id, json)`.
fn paginate(
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

async fn entities(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    let e = &c.ramp.entity;
    let item = json!({
        "id": e.id, "entity_name": e.name, "currency": c.currency, "is_primary": true,
        "bank_accounts": [{"id": e.bank_account_id, "name": "Operating", "usage_type": "BILL_PAY_BANK_ACCOUNT", "last_four": e.bank_last_four}],
    });
    match paginate(vec![(e.id.clone(), item)], &q, &headers, "entities", &[]) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

fn render_vendor(c: &SimClient, v: &RampVendorRec) -> Value {
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

async fn vendors(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    let items = c
        .ramp
        .vendors
        .iter()
        .map(|v| (v.id.clone(), render_vendor(c, v)))
        .collect();
    match paginate(items, &q, &headers, "vendors", &[]) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

async fn vendor_accounts(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(v) = st.clients[ci].ramp.vendors.iter().find(|v| v.id == id) else {
        return err(
            StatusCode::NOT_FOUND,
            "DEVELOPER_0404",
            "Vendor not found",
            None,
        );
    };
    let item = json!({"id": v.account_id, "type": "ACH", "last_four": v.account_last_four, "name": format!("{} ACH", v.name)});
    match paginate(
        vec![(v.account_id.clone(), item)],
        &q,
        &headers,
        &format!("vendors/{id}/accounts"),
        &[],
    ) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

pub fn render_bill(c: &SimClient, b: &RampBillRec, detail: bool) -> Value {
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

async fn list_bills(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    let want = |k: &str, v: &str| q.get(k).is_none_or(|w| w == v);
    let items = c
        .ramp
        .bills
        .iter()
        .filter(|b| {
            want("entity_id", &b.entity_id)
                && want("vendor_id", &b.vendor_id)
                && want("payment_status", b.status.as_str())
        })
        .map(|b| (b.id.clone(), render_bill(c, b, false)))
        .collect();
    match paginate(
        items,
        &q,
        &headers,
        "bills",
        &["entity_id", "vendor_id", "payment_status"],
    ) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

async fn get_bill(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    match c.ramp.bills.iter().find(|b| b.id == id) {
        Some(b) => Json(render_bill(c, b, true)).into_response(),
        None => err(
            StatusCode::NOT_FOUND,
            "DEVELOPER_0404",
            "Bill not found",
            None,
        ),
    }
}

fn date_field(v: &Value, field: &str) -> Result<NaiveDate, Rejection> {
    let s = v
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(field))?;
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| invalid(field, "Not a valid date."))
}

fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str, Rejection> {
    match v.get(field).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(missing(field)),
    }
}

async fn create_bill(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Injected failures answer before anything is created.
    if !st.faults.ramp_create_fail_next.is_empty() {
        let status = st.faults.ramp_create_fail_next.remove(0);
        sb.persist_logged(&st).await;
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = err(code, "DEVELOPER_FAULT", "Injected failure", None);
        if status == 429 {
            res.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        return res;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            "DEVELOPER_7000",
            "Request body is not valid JSON",
            None,
        );
    };
    let remote_id = v
        .get("remote_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(rid) = &remote_id {
        let c = &st.clients[ci];
        if let Some(existing) = c
            .ramp
            .bills
            .iter()
            .find(|b| b.remote_id.as_deref() == Some(rid))
        {
            return (StatusCode::OK, Json(render_bill(c, existing, true))).into_response();
        }
    }
    let today = sb.inner.clock.today();
    let now = sb.inner.clock.now();
    let rec = match validate_create(&st.clients[ci], &v, today) {
        Ok(parts) => parts,
        Err(r) => return *r,
    };
    let mut rng_id = uuid::Uuid::new_v4().to_string();
    while st.clients[ci].ramp.bills.iter().any(|b| b.id == rng_id) {
        rng_id = uuid::Uuid::new_v4().to_string();
    }
    let bill = RampBillRec {
        id: rng_id,
        remote_id,
        created_at: now,
        ..rec
    };
    let lose = st.faults.ramp_create_lose_response_next > 0;
    if lose {
        st.faults.ramp_create_lose_response_next -= 1;
    }
    st.clients[ci].ramp.bills.push(bill.clone());
    sb.persist_logged(&st).await;
    if lose {
        return err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "DEVELOPER_FAULT",
            "Internal error",
            None,
        );
    }
    (
        StatusCode::CREATED,
        Json(render_bill(&st.clients[ci], &bill, true)),
    )
        .into_response()
}

/// Validate a create body; the returned record still needs id/remote_id/created_at.
fn validate_create(c: &SimClient, v: &Value, today: NaiveDate) -> Result<RampBillRec, Rejection> {
    for f in [
        "due_at",
        "entity_id",
        "invoice_currency",
        "invoice_number",
        "issued_at",
        "payment_method",
        "vendor_contact_id",
        "vendor_id",
    ] {
        str_field(v, f)?;
    }
    let due_at = date_field(v, "due_at")?;
    let issued_at = date_field(v, "issued_at")?;
    let entity_id = str_field(v, "entity_id")?;
    if entity_id != c.ramp.entity.id {
        return Err(invalid("entity_id", "Entity not found."));
    }
    let cur = str_field(v, "invoice_currency")?;
    let currency =
        currency_code(cur).ok_or_else(|| invalid("invoice_currency", "Not a valid currency."))?;
    if currency != c.currency {
        return Err(invalid(
            "invoice_currency",
            "Currency not supported for this entity.",
        ));
    }
    let vendor_id = str_field(v, "vendor_id")?;
    let vendor = c
        .ramp
        .vendors
        .iter()
        .find(|x| x.id == vendor_id)
        .ok_or_else(|| invalid("vendor_id", "Vendor not found."))?;
    let contact = str_field(v, "vendor_contact_id")?;
    if contact != vendor.contact_id {
        return Err(invalid(
            "vendor_contact_id",
            "Contact does not belong to the vendor.",
        ));
    }
    if str_field(v, "payment_method")? != "ACH" {
        return Err(invalid("payment_method", "Only ACH is simulated."));
    }
    let details = v
        .get("payment_details")
        .filter(|d| d.is_object())
        .ok_or_else(|| missing("payment_details"))?;
    let arrival = date_field(details, "payment_arrival_date")?;
    if matches!(arrival.weekday(), Weekday::Sat | Weekday::Sun) {
        return Err(invalid(
            "payment_arrival_date",
            "Payment arrival date cannot be a weekend or bank holiday.",
        ));
    }
    if arrival < today {
        return Err(invalid(
            "payment_arrival_date",
            "Payment arrival date cannot be in the past.",
        ));
    }
    if str_field(details, "source_bank_account_id")? != c.ramp.entity.bank_account_id {
        return Err(invalid(
            "source_bank_account_id",
            "Not a BILL_PAY_BANK_ACCOUNT of this entity.",
        ));
    }
    if str_field(details, "vendor_account_id")? != vendor.account_id {
        return Err(invalid("vendor_account_id", "Vendor account not found."));
    }
    let lines = v
        .get("line_items")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| missing("line_items"))?;
    let mut line_items = Vec::new();
    let mut total = 0i64;
    for line in lines {
        let text = line
            .get("amount")
            .and_then(decimal_text)
            .ok_or_else(|| missing("line_items.amount"))?;
        let minor = parse_minor(&text, minor_exponent(&currency))
            .ok_or_else(|| invalid("line_items.amount", "Not a valid decimal amount."))?;
        if minor <= 0 {
            return Err(invalid("line_items.amount", "Amount must be positive."));
        }
        total = total
            .checked_add(minor)
            .ok_or_else(|| invalid("line_items.amount", "Amount too large."))?;
        let memo = line
            .get("memo")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        line_items.push((minor, memo));
    }
    Ok(RampBillRec {
        id: String::new(),
        remote_id: None,
        entity_id: entity_id.to_owned(),
        vendor_id: vendor_id.to_owned(),
        vendor_contact_id: contact.to_owned(),
        invoice_number: str_field(v, "invoice_number")?.to_owned(),
        issued_at,
        due_at,
        amount_cents: total,
        line_items,
        memo: v.get("memo").and_then(Value::as_str).map(str::to_owned),
        payment_arrival_date: arrival,
        source_bank_account_id: c.ramp.entity.bank_account_id.clone(),
        vendor_account_id: vendor.account_id.clone(),
        status: RampStatus::Open,
        created_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        paid_at: None,
        payment_date: None,
        trace_id: None,
    })
}
