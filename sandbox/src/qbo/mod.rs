//! The QuickBooks Online simulator: the query language, reads, CDC, and
//! writes (create, full and sparse update with SyncToken checks, delete,
//! void, `requestid` replay) of Bill, BillPayment, Vendor, Account,
//! Customer, Invoice and Payment; CompanyInfo reads. Throttled per realm.
//! This module holds the router, authentication, faults and the read
//! handlers; the rest lives in the submodules.

mod cdc;
pub(crate) mod limits;
mod names;
mod ops;
mod query;
mod render;
mod sales;
mod tz;
mod writes;

use crate::sim_state::*;
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
use render::{entity_name, render_all};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use tokio::sync::MutexGuard;
pub(crate) use writes::edit_bill;

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/v3/company/{realm}/query", get(query_get).post(query_post))
        .route("/v3/company/{realm}/cdc", get(cdc::cdc))
        .route("/v3/company/{realm}/{entity}", post(ops::entity_post))
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

/// The simulated instant and the company's time zone: every answer's
/// `time` is local to the realm.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    pub(crate) at: DateTime<Utc>,
    pub(crate) zone: &'static str,
}

impl Now {
    fn of(realm: &QboRealm, at: DateTime<Utc>) -> Now {
        Now {
            at,
            zone: tz::known(&realm.time_zone),
        }
    }
    /// Before the realm is known (authentication, injected faults).
    fn default_zone(at: DateTime<Utc>) -> Now {
        Now {
            at,
            zone: tz::DEFAULT_ZONE,
        }
    }
    pub(crate) fn text(&self) -> String {
        tz::local_time(self.zone, self.at)
    }
    /// The company's calendar date.
    pub(crate) fn today(&self) -> chrono::NaiveDate {
        tz::local_date(self.zone, self.at)
    }
}

fn fault(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    detail: &str,
    now: Now,
) -> Response {
    let body = json!({
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}], "type": kind},
        "time": now.text(),
    });
    (status, Json(body)).into_response()
}

fn throttled(now: Now) -> Response {
    fault(
        StatusCode::TOO_MANY_REQUESTS,
        "ThrottleExceeded",
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.",
        now,
    )
}

/// An injected failure, as QuickBooks answers it: throttling (429, code
/// 3001) or a service fault.
pub(crate) fn injected(status: StatusCode, now: DateTime<Utc>) -> Response {
    let now = Now::default_zone(now);
    if status == StatusCode::TOO_MANY_REQUESTS {
        return throttled(now);
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

fn validation(code: &str, message: &str, detail: &str, now: Now) -> Response {
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
fn vbox(code: &str, message: &str, detail: &str, now: Now) -> Box<Response> {
    Box::new(validation(code, message, detail, now))
}

/// Object Not Found (610), as QBO answers a read or write of an Id it
/// does not have.
fn not_found(entity: &str, id: &str, now: Now) -> Box<Response> {
    vbox(
        "610",
        "Object Not Found",
        &format!("Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. {entity} {id}"),
        now,
    )
}

/// Check the Bearer token, the minor version and the realm's throttle; hand
/// back the locked state, the client's index and the realm's `Now`.
async fn authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    realm: &str,
    q: &HashMap<String, String>,
) -> Result<(MutexGuard<'a, SimState>, usize, Now), Response> {
    let at = sb.inner.clock.now();
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
            Now::default_zone(at),
        ));
    };
    let now = Now::of(&st.clients[ci].qbo, at);
    if !st.faults.qbo_throttle_off && !sb.inner.qbo.admit(realm, std::time::Instant::now()) {
        return Err(throttled(now));
    }
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
    Ok((st, ci, now))
}

fn run_query(c: &SimClient, q: &str, now: Now) -> Response {
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
        return Json(json!({"QueryResponse": {"totalCount": total}, "time": now.text()}))
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
    Json(json!({"QueryResponse": qr, "time": now.text()})).into_response()
}

async fn query_get(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci, now) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
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
    let (st, ci, now) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
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
    let (st, ci, now) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
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
        Some(v) => Json(json!({ name: v, "time": now.text() })).into_response(),
        None => *not_found(name, &id, now),
    }
}

#[cfg(test)]
mod tests;
