//! The QuickBooks Online simulator: query language, entity reads, and
//! BillPayment create (plus sparse update of `PrivateNote`). This module
//! holds the router, authentication, faults and the handlers; the query
//! language, rendering and writes live in the submodules.

mod query;
mod render;
mod writes;

use crate::state::*;
use crate::wire::bearer_token;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use query::parse_query;
use render::{entity_name, qtime, render_all, render_bill_payment};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use tokio::sync::MutexGuard;
pub(crate) use writes::edit_bill;
use writes::{create_bill_payment, update_bill_payment};

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/v3/company/{realm}/query", get(query_get).post(query_post))
        .route("/v3/company/{realm}/{entity}", post(entity_post))
        .route("/v3/company/{realm}/{entity}/{id}", get(entity_get))
        .route(
            "/oauth2/v1/tokens/bearer",
            post(crate::oauth::token::qbo_token),
        )
        .route(
            "/v2/oauth2/tokens/revoke",
            post(crate::oauth::token::qbo_revoke),
        )
        .layer(axum::middleware::map_response(add_tid))
}

async fn add_tid(mut res: Response) -> Response {
    let id = format!("1-{}", uuid::Uuid::new_v4().simple());
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("intuit_tid", v);
    }
    res
}

fn fault(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Response {
    let body = json!({
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}], "type": kind},
        "time": qtime(now),
    });
    (status, Json(body)).into_response()
}

/// An injected failure, as QuickBooks answers it: throttling (429, code
/// 3001) or a service fault.
pub(crate) fn injected(status: StatusCode, now: DateTime<Utc>) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return fault(
            status,
            "ThrottleExceeded",
            "3001",
            "message=ThrottleExceeded; errorCode=003001; statusCode=429",
            "The request limit was reached.",
            now,
        );
    }
    fault(
        status,
        "SystemFault",
        "10000",
        "An application error has occurred while processing your request",
        "System Failure Error: injected by the sandbox",
        now,
    )
}

fn validation(code: &str, message: &str, detail: &str, now: DateTime<Utc>) -> Response {
    fault(
        StatusCode::BAD_REQUEST,
        "ValidationFault",
        code,
        message,
        detail,
        now,
    )
}

/// Validation faults on the (rare) error path of helpers are boxed: a
/// Response is large.
fn vbox(code: &str, message: &str, detail: &str, now: DateTime<Utc>) -> Box<Response> {
    Box::new(validation(code, message, detail, now))
}

async fn authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    realm: &str,
    q: &HashMap<String, String>,
) -> Result<(MutexGuard<'a, SimState>, usize), Response> {
    let now = sb.inner.clock.now();
    let token = bearer_token(headers);
    let st = sb.inner.state.lock().await;
    // Any live access token of a grant for this realm.
    let ci = st
        .clients
        .iter()
        .position(|c| c.qbo.realm_id == realm)
        .filter(|_| {
            token
                .and_then(|t| {
                    st.oauth
                        .by_access(crate::SimRail::Qbo, t, chrono::Utc::now())
                })
                .is_some_and(|g| g.account == realm)
        });
    let Some(ci) = ci else {
        return Err(fault(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFault",
            "3200",
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "Token expired or invalid",
            now,
        ));
    };
    if let Some(mv) = q.get("minorversion") {
        if !mv.parse::<u32>().is_ok_and(|v| v >= 75) {
            return Err(validation(
                "2010",
                "Invalid minorversion",
                "minorversion must be 75 or more",
                now,
            ));
        }
    }
    Ok((st, ci))
}

fn run_query(c: &SimClient, q: &str, now: DateTime<Utc>) -> Response {
    let parsed = match parse_query(q) {
        Ok(p) => p,
        Err(e) => {
            return validation(
                "4000",
                "Error parsing query",
                &format!("QueryParserError: {e}"),
                now,
            )
        }
    };
    let rows = parsed.filter(render_all(c, parsed.entity));
    let total = rows.len();
    if parsed.count {
        return Json(json!({"QueryResponse": {"totalCount": total}, "time": qtime(now)}))
            .into_response();
    }
    let page = parsed.page(rows);
    let mut qr = Map::new();
    if !page.is_empty() {
        qr.insert("startPosition".into(), json!(parsed.start));
        qr.insert("maxResults".into(), json!(page.len()));
        qr.insert("totalCount".into(), json!(total));
        qr.insert(parsed.entity.into(), Value::Array(page));
    }
    Json(json!({"QueryResponse": qr, "time": qtime(now)})).into_response()
}

async fn query_get(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    match q.get("query") {
        Some(text) => run_query(&st.clients[ci], text, now),
        None => validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "query",
            now,
        ),
    }
}

async fn query_post(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    match std::str::from_utf8(&body) {
        Ok(text) => run_query(&st.clients[ci], text, now),
        Err(_) => validation("500", "Unsupported Operation", "body is not UTF-8", now),
    }
}

async fn entity_get(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((realm, entity, id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    // CompanyInfo: one per realm, its Id the realm id.
    if entity.eq_ignore_ascii_case("companyinfo") {
        let c = &st.clients[ci];
        if id != c.qbo.realm_id {
            return validation(
                "610",
                "Object Not Found",
                &format!("Object Not Found : CompanyInfo {id}"),
                now,
            );
        }
        return Json(json!({
            "CompanyInfo": {
                "Id": c.qbo.realm_id, "SyncToken": "0", "CompanyName": c.name,
                "LegalName": c.name, "Country": "US",
                "MetaData": { "CreateTime": qtime(c.qbo.created_at) },
            },
            "time": qtime(now),
        }))
        .into_response();
    }
    let Some(name) = entity_name(&entity) else {
        return fault(
            StatusCode::NOT_FOUND,
            "ValidationFault",
            "0",
            "Unsupported entity",
            &entity,
            now,
        );
    };
    let found = render_all(&st.clients[ci], name)
        .into_iter()
        .find(|v| v.get("Id").and_then(Value::as_str) == Some(id.as_str()));
    match found {
        Some(v) => Json(json!({ name: v, "time": qtime(now) })).into_response(),
        None => validation("610", "Object Not Found", &format!("Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. {name} {id}"), now),
    }
}

async fn entity_post(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((realm, entity)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (mut st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    if !entity.eq_ignore_ascii_case("billpayment") {
        return validation(
            "500",
            "Unsupported Operation",
            &format!("Writing {entity} is not simulated"),
            now,
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            "body is not JSON",
            now,
        );
    };
    let today = sb.inner.clock.today();
    let result = if v.get("Id").is_some() {
        update_bill_payment(&mut st.clients[ci], &v, now)
    } else {
        create_bill_payment(&mut st.clients[ci], &v, now, today)
    };
    match result {
        Ok(idx) => {
            let c = &st.clients[ci];
            let out = render_bill_payment(&c.qbo.bill_payments[idx], &c.qbo, &c.currency);
            // Injected: the write is applied, its answer lost.
            let lose = st.faults.qbo_write_lose_response_next > 0;
            if lose {
                st.faults.qbo_write_lose_response_next -= 1;
            }
            sb.persist_logged(&st).await;
            if lose {
                return injected(StatusCode::INTERNAL_SERVER_ERROR, now);
            }
            Json(json!({"BillPayment": out, "time": qtime(now)})).into_response()
        }
        Err(r) => *r,
    }
}
