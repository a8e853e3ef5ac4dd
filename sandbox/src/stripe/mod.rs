//! The Stripe simulator (API version [`API_VERSION`]): Stripe Apps OAuth
//! (`apps_oauth`), `GET /v1/account`, and the resources RowCol's A/R
//! insights read: customers, invoices (+ invoice items), payment intents,
//! charges, balance transactions, payouts, events and the Reporting API.
//! Every call carries a secret key (`auth`); bodies and query strings are
//! bracket-nested forms (`form`); errors are Stripe's envelope (`error`);
//! `Request-Id` on every response. POSTs with an `Idempotency-Key` are
//! replayed (`idempotency`); 25 requests per second per account (test mode)
//! and then 429 (`invalid_request_error`, code `rate_limit`). The accounts' data lives in
//! [`SimState::stripe`](crate::sim_state::SimState) and moves with the sandbox
//! clock (`activity`).

mod activity;
mod apps_oauth;
pub(crate) mod auth;
mod call;
mod customers;
pub mod data;
mod error;
mod events;
mod form;
mod idempotency;
mod invoices;
mod list;
mod payments;
mod payouts;
mod reporting;
#[cfg(test)]
mod tests;
pub mod unified_payments;
#[cfg(test)]
mod webhook_tests;
pub(crate) mod webhooks;

pub(crate) use activity::{advance, ensure_account, issue_invoice};
use call::{Call, Res};
use error::StripeError;

use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Json, Router};
use std::time::{Duration, Instant};

/// The API version the simulator models (stripe-node 23's pinned one).
pub const API_VERSION: &str = "2026-07-29.dahlia";

/// Requests per second per account in test mode.
const RATE_LIMIT: usize = 25;

type Op = fn(&mut Call) -> Res;

fn op_get(f: Op) -> MethodRouter<Sandbox> {
    get(move |State(sb): State<Sandbox>, p: RawPathParams, req: Request| handle(sb, f, p, req))
}

fn op_delete(f: Op) -> MethodRouter<Sandbox> {
    delete(move |State(sb): State<Sandbox>, p: RawPathParams, req: Request| handle(sb, f, p, req))
}

fn op_post(f: Op) -> MethodRouter<Sandbox> {
    post(move |State(sb): State<Sandbox>, p: RawPathParams, req: Request| handle(sb, f, p, req))
}

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/v1/oauth/token", post(apps_oauth::token))
        .route("/v1/oauth/deauthorize", post(apps_oauth::deauthorize))
        .route("/v1/account", get(apps_oauth::account))
        .route(
            "/v1/customers",
            op_get(customers::list).merge(op_post(customers::create)),
        )
        .route("/v1/customers/{id}", op_get(customers::retrieve))
        .route(
            "/v1/invoices",
            op_get(invoices::list).merge(op_post(invoices::create)),
        )
        .route(
            "/v1/invoices/{id}",
            op_get(invoices::retrieve).merge(op_post(invoices::update_fields)),
        )
        .route("/v1/invoices/{id}/finalize", op_post(invoices::finalize))
        .route("/v1/invoices/{id}/pay", op_post(invoices::pay))
        .route("/v1/invoices/{id}/void", op_post(invoices::void))
        .route(
            "/v1/invoices/{id}/mark_uncollectible",
            op_post(invoices::mark_uncollectible),
        )
        .route("/v1/invoices/{id}/add_lines", op_post(invoices::add_lines))
        .route("/v1/invoiceitems", op_post(invoices::create_item))
        .route(
            "/v1/payment_intents",
            op_get(payments::list_intents).merge(op_post(payments::create_intent)),
        )
        .route(
            "/v1/payment_intents/{id}",
            op_get(payments::retrieve_intent),
        )
        .route(
            "/v1/payment_intents/{id}/confirm",
            op_post(payments::confirm),
        )
        .route("/v1/charges", op_get(payments::list_charges))
        .route("/v1/charges/{id}", op_get(payments::retrieve_charge))
        .route("/v1/balance_transactions", op_get(payments::list_txns))
        .route(
            "/v1/balance_transactions/{id}",
            op_get(payments::retrieve_txn),
        )
        .route("/v1/payouts", op_get(payouts::list))
        .route("/v1/payouts/{id}", op_get(payouts::retrieve))
        .route("/v1/events", op_get(events::list))
        .route("/v1/events/{id}", op_get(events::retrieve))
        .route(
            "/v1/webhook_endpoints",
            op_get(webhooks::list).merge(op_post(webhooks::create)),
        )
        .route(
            "/v1/webhook_endpoints/{id}",
            op_get(webhooks::retrieve)
                .merge(op_post(webhooks::update))
                .merge(op_delete(webhooks::delete)),
        )
        .route(
            "/v1/reporting/report_types/{id}",
            op_get(reporting::report_type),
        )
        .route(
            "/v1/reporting/report_runs",
            op_get(reporting::list_runs).merge(op_post(reporting::create_run)),
        )
        .route(
            "/v1/reporting/report_runs/{id}",
            op_get(reporting::retrieve_run),
        )
        .route("/v1/files/{id}", op_get(reporting::retrieve_file))
        // files.stripe.com's download, under this mount.
        .route("/files/v1/files/{id}/contents", get(file_contents))
        .layer(axum::middleware::map_response(add_request_id))
}

async fn add_request_id(mut res: Response) -> Response {
    let id = format!("req_{}", &uuid::Uuid::new_v4().simple().to_string()[..14]);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("request-id", v);
    }
    res
}

/// An injected failure, as Stripe answers it.
pub(crate) fn injected(status: StatusCode) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Type `invalid_request_error` with code `rate_limit`, as Stripe
        // answers: the API's `error.type` enum has no `rate_limit_error`.
        return StripeError::new(
            status,
            "invalid_request_error",
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        )
        .with_code("rate_limit")
        .response();
    }
    StripeError::new(
        status,
        "api_error",
        "An unknown error occurred (injected by the sandbox)",
    )
    .response()
}

/// Count a request of `account`; false when it is over the limit (the
/// last second on the wall clock: rate limits are about real load).
fn within_rate(sb: &Sandbox, account: &str) -> bool {
    let now = Instant::now();
    let mut hits = sb
        .inner
        .stripe_hits
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let q = hits.entry(account.to_owned()).or_default();
    while q
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        q.pop_front();
    }
    if q.len() >= RATE_LIMIT {
        return false;
    }
    q.push_back(now);
    true
}

async fn handle(sb: Sandbox, f: Op, params: RawPathParams, req: Request) -> Response {
    let ids: Vec<String> = params.iter().map(|(_, v)| v.to_owned()).collect();
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(_) => return StripeError::invalid("The request body is too large.", None).response(),
    };
    run(
        &sb,
        f,
        ids,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
    )
    .await
}

async fn run(
    sb: &Sandbox,
    f: Op,
    ids: Vec<String>,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let now = sb.inner.clock.now();
    let mut st = sb.inner.state.lock().await;
    let account = match auth::account_of(&st, headers, now) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    if !st.faults.rate_limits_off && !within_rate(sb, &account) {
        return injected(StatusCode::TOO_MANY_REQUESTS);
    }
    let raw = if *method != Method::POST {
        uri.query().unwrap_or("").as_bytes().to_vec()
    } else {
        body.to_vec()
    };
    let Some(params) = form::parse(&raw) else {
        return StripeError::invalid(
            "Invalid request: the parameters must be form encoded (application/x-www-form-urlencoded) with well-formed brackets.",
            None,
        )
        .response();
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|_| *method == Method::POST);
    activity::ensure_account(&mut st, &account, now);
    // Events made before this call (seeded history, the clock's) go to the
    // endpoints that existed then, not to one this call creates.
    let queued_before = webhooks::note_events(&mut st, now);
    let Some(acct) = st.stripe.accounts.get_mut(&account) else {
        return StripeError::invalid("This account has no Stripe data in the sandbox.", None)
            .response();
    };
    let digest = idempotency::digest(method.as_str(), uri.path(), &params);
    if let Some(k) = &key {
        if k.len() > 255 {
            return StripeError::invalid("Idempotency-Key must be at most 255 characters.", None)
                .response();
        }
        match idempotency::lookup(acct, k, &digest, now) {
            idempotency::Seen::Replay(status, body) => {
                let mut res = (status, Json(body)).into_response();
                res.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return res;
            }
            idempotency::Seen::Conflict(e) => return e.response(),
            idempotency::Seen::New => {}
        }
    }
    let mut call = Call {
        acct,
        now,
        ids,
        params,
        base: sb.inner.config.public_base.trim_end_matches('/').to_owned(),
    };
    let events_before = call.acct.events.len();
    let (status, body) = match f(&mut call) {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => (e.status, e.body()),
    };
    if let Some(k) = key {
        idempotency::store(call.acct, k, digest, status, &body, now);
    }
    // Every change records an event (a read that finishes a report run
    // too); a read that changed nothing is not saved.
    if *method != Method::GET || call.acct.events.len() != events_before {
        st.stripe_changes += 1;
    }
    let queued = queued_before + webhooks::note_events(&mut st, now);
    if queued > 0
        || st.stripe_changes
            != sb
                .inner
                .stripe_saved
                .load(std::sync::atomic::Ordering::SeqCst)
    {
        sb.persist_logged(&st).await;
    }
    let mut res = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&account) {
        if headers.contains_key("stripe-account") {
            res.headers_mut().insert("stripe-account", v);
        }
    }
    res
}

/// `GET /files/v1/files/{id}/contents`: a report's CSV, with the key.
async fn file_contents(
    State(sb): State<Sandbox>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = sb.inner.clock.now();
    let st = sb.inner.state.lock().await;
    let account = match auth::account_of(&st, &headers, now) {
        Ok(a) => a,
        Err(e) => return e.response(),
    };
    let Some(acct) = st.stripe.accounts.get(&account) else {
        return StripeError::no_such("file", &id, "id").response();
    };
    match reporting::contents(acct, &id) {
        Ok(csv) => ([("content-type", "text/csv")], csv).into_response(),
        Err(e) => e.response(),
    }
}
