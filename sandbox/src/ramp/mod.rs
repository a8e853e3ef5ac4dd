//! The Ramp simulator: `/developer/v1/{entities,vendors,bills,transactions,transfers}`. This
//! module holds the router, authentication with rate limiting, errors and
//! the handlers; rendering and create validation live in the submodules.

pub(crate) mod ach_return;
mod activity;
mod bills;
mod render;
pub(crate) mod vendor_bank;
pub(crate) mod vendors;
mod webhooks;
mod writes;

pub(crate) use webhooks::{seed_webhook_subscriptions, seeded_subscription};

use crate::sim_state::*;
use crate::wire::bearer_token;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use render::{paginate, render_bill};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::MutexGuard;
use writes::validate_create;

pub const RATE_LIMIT: usize = 200;
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/developer/v1/business", get(business))
        .route("/developer/v1/entities", get(entities))
        .route("/developer/v1/entities/{id}", get(entity))
        .route("/developer/v1/bank-accounts/{id}", get(bank_account))
        .merge(vendors::routes())
        .merge(activity::routes())
        .route("/developer/v1/bills", get(list_bills).post(create_bill))
        .route(
            "/developer/v1/bills/{id}",
            get(get_bill).patch(bills::patch).delete(bills::archive),
        )
        .route("/developer/v1/token", post(crate::oauth::token::ramp_token))
        .route(
            "/developer/v1/token/revoke",
            post(crate::oauth::token::ramp_revoke),
        )
        .merge(webhooks::routes())
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

/// An injected failure, in Ramp's envelope (429 with `Retry-After: 1`).
pub(crate) fn injected(status: StatusCode) -> Response {
    let mut res = err(status, "DEVELOPER_FAULT", "Injected failure", None);
    if status == StatusCode::TOO_MANY_REQUESTS {
        res.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    res
}

/// Validation helpers return a boxed response: it is large, and only the
/// error path carries it.
type Rejection = Box<Response>;

/// Ramp's `InvalidInput`: 400, as the reference lists for its endpoints.
fn invalid(field: &str, msg: &str) -> Rejection {
    Box::new(err(
        StatusCode::BAD_REQUEST,
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

/// 404 for a `what` the business does not have.
fn absent(what: &str) -> Response {
    err(
        StatusCode::NOT_FOUND,
        "DEVELOPER_0404",
        &format!("{what} not found"),
        None,
    )
}

/// Refuse a query parameter outside `known` (400), as the bills list does:
/// a misspelt filter silently ignored would return everything.
fn only_params(q: &HashMap<String, String>, known: &[&str]) -> Result<(), Rejection> {
    match q
        .keys()
        .find(|k| !known.contains(&k.as_str()) && *k != "start" && *k != "page_size")
    {
        Some(k) => Err(invalid(k, "Unknown field.")),
        None => Ok(()),
    }
}

/// Check the Bearer token and the rate limit; hand back the locked state and
/// the client's index.
async fn authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
) -> Result<(MutexGuard<'a, SimState>, usize), Response> {
    auth(sb, headers, None).await
}

/// [`authed`], and the token's grant must hold `scope`: 403 without it
/// (rails.md §2.2), after the request has counted against the rate limit.
async fn authed_for<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    scope: &str,
) -> Result<(MutexGuard<'a, SimState>, usize), Response> {
    auth(sb, headers, Some(scope)).await
}

async fn auth<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    need: Option<&str>,
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
    // The token identifies the business: any live access token of its grants.
    let grant = st
        .oauth
        .by_access(crate::SimRail::Ramp, token, chrono::Utc::now());
    let scoped = need.is_none_or(|n| grant.is_some_and(|g| g.scope.split(' ').any(|s| s == n)));
    let business = grant.map(|g| g.account.clone());
    let Some(ci) = business.and_then(|b| st.clients.iter().position(|c| c.ramp.business_id == b))
    else {
        return Err(unauthorized());
    };
    let business = st.clients[ci].ramp.business_id.clone();
    let limited = !st.faults.rate_limits_off && {
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
    if !scoped {
        return Err(err(
            StatusCode::FORBIDDEN,
            "DEVELOPER_0403",
            &format!("Missing scope: {}", need.unwrap_or_default()),
            None,
        ));
    }
    Ok((st, ci))
}

/// An entity as Ramp's `ApiEntityResource`: its accounts are the
/// accounting accounts Ramp maps (`EntityProviderAccount`), each with a
/// `usage_type`; the one used to pay bills is `BILL_PAY_BANK_ACCOUNT` and
/// names its bank account in `bank_account_id`.
fn render_entity(c: &SimClient) -> Value {
    let e = &c.ramp.entity;
    let checking = c.qbo.account_named("Checking");
    let created = c.qbo.created_at.to_rfc3339();
    let account = |usage: &str, class: &str, bank: Option<&str>, name: &str, ext: &str| {
        json!({
            "bank_account_id": bank, "classification": class, "created_at": created,
            "external_id": ext, "external_name": name, "internal_id": "", "usage_type": usage,
        })
    };
    let checking_id = checking.map(|a| a.id.as_str()).unwrap_or("");
    let ap_id = c
        .qbo
        .account_named("Accounts Payable (A/P)")
        .map(|a| a.id.as_str())
        .unwrap_or("");
    json!({
        "id": e.id, "entity_name": e.name, "currency": c.currency, "is_primary": true,
        "location_ids": [],
        "accounts": [
            account("CASH_ACCOUNT", "ASSET", None, "Checking", checking_id),
            account("BILL_PAY_ACCOUNTS_PAYABLE_ACCOUNT", "LIABILITY", None, "Accounts Payable (A/P)", ap_id),
            account("BILL_PAY_BANK_ACCOUNT", "ASSET", Some(&e.bank_account_id), "Checking", checking_id),
        ],
    })
}

/// `GET /developer/v1/business`: the business the token acts for.
async fn business(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    Json(json!({
        "id": c.ramp.business_id,
        "business_name_legal": c.name,
        "business_name_on_card": c.name,
        "active": true,
        "created": c.qbo.created_at.to_rfc3339(),
    }))
    .into_response()
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
    let items = vec![(c.ramp.entity.id.clone(), render_entity(c))];
    match paginate(items, &q, &list_url(&sb, "entities")) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

async fn entity(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    if c.ramp.entity.id != id {
        return err(
            StatusCode::NOT_FOUND,
            "DEVELOPER_0404",
            "Entity not found",
            None,
        );
    }
    Json(render_entity(c)).into_response()
}

/// `ApiBankAccountResource`: the business's own bank account.
async fn bank_account(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let c = &st.clients[ci];
    let e = &c.ramp.entity;
    if e.bank_account_id != id {
        return err(
            StatusCode::NOT_FOUND,
            "DEVELOPER_0404",
            "Bank account not found",
            None,
        );
    }
    Json(json!({
        "id": e.bank_account_id,
        "account_number_last_four": e.bank_last_four,
        "financial_institution_name": c.plaid.institution_name,
    }))
    .into_response()
}

/// The full URL of a list, from the configured base (not the request's
/// Host header: behind a proxy that would name the wrong host).
fn list_url(sb: &Sandbox, path: &str) -> String {
    format!(
        "{}/ramp/developer/v1/{path}",
        sb.inner.config.public_base.trim_end_matches('/')
    )
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
    let filter = match bills::ListFilter::parse(&q, &c.currency) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    // The list may lag a just-created bill (a fault; see `Faults`).
    let visible_before =
        sb.inner.clock.now() - chrono::Duration::seconds(i64::from(st.faults.ramp_list_lag_secs));
    let items = c
        .ramp
        .bills
        .iter()
        .filter(|b| {
            filter.matches(b)
                && (st.faults.ramp_list_lag_secs == 0 || b.created_at <= visible_before)
        })
        .map(|b| (b.id.clone(), render_bill(c, b, false)))
        .collect();
    match paginate(items, &q, &list_url(&sb, "bills")) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

/// A date-time filter: RFC 3339, or without an offset (then UTC, as Ramp
/// assumes).
fn parse_time(t: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
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

async fn create_bill(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Injected failures answer before anything is created.
    if !st.faults.ramp_create_fail_next.is_empty() {
        let status = st.faults.ramp_create_fail_next.remove(0);
        sb.persist_logged(&st).await;
        return injected(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
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
    // Ramp documents `remote_id` only as the client's own id and no
    // de-duplication on it: a second POST with the same `remote_id` makes a
    // second bill. Callers must look before they retry a create.
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
    // An ACH debit leaves the bank days before the arrival date; how many
    // is fixed now, from the world's seed, so a seed replays.
    let ach_lead = if rec.payment_method != "ACH" {
        0
    } else if let Some(days) = st.faults.ramp_ach_lead_days {
        days.min(5)
    } else {
        let seq = st.next_seq();
        crate::engine::ach_lead(st.seed, seq)
    };
    let bill = RampBillRec {
        id: rng_id,
        remote_id,
        created_at: now,
        ach_lead,
        // `PAID_MANUALLY` bills are marked paid as they are made.
        paid_at: (rec.status == RampStatus::Paid).then_some(now),
        ..rec
    };
    let lose = st.faults.ramp_create_lose_response_next > 0;
    if lose {
        st.faults.ramp_create_lose_response_next -= 1;
    }
    st.clients[ci].ramp.bills.push(bill.clone());
    if bill.status == RampStatus::Paid {
        let business = st.clients[ci].ramp.business_id.clone();
        crate::engine::queue_event(&mut st, &business, "bills.paid", &bill.id, now);
    }
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
