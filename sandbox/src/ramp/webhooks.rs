//! Ramp webhook subscriptions: `/developer/v1/webhooks` (create, list, get,
//! delete) and `/{id}/verify`. A new subscription is `pending_verification`;
//! a `webhooks.verification` event carrying a `challenge` is queued to its
//! endpoint (signed with its secret, through the normal delivery queue);
//! `/verify` with that challenge makes it `active`. Events go to every
//! active subscription of the business that lists their type (see
//! `engine::queue_event`). Times are wall clock.

use super::{authed, err, invalid, missing};
use crate::sim_state::*;
use crate::{Sandbox, SandboxConfig};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The event types a subscription may list.
pub const EVENT_TYPES: &[&str] = &[
    "applications.status_updated",
    "bills.approved",
    "bills.archived",
    "bills.created",
    "bills.paid",
    "bills.ready_to_sync",
    "bills.rejected",
    "entities.created",
    "item_receipts.created",
    "payments.updated",
    "purchase_orders.archived",
    "purchase_orders.created",
    "purchase_orders.updated",
    "reimbursements.batch_payment_reimbursed",
    "reimbursements.ready_for_review",
    "reimbursements.ready_to_sync",
    "tests.test_event",
    "transactions.authorized",
    "transactions.cleared",
    "transactions.ready_for_review",
    "transactions.ready_to_sync",
];

/// At most this many `additional_headers`.
const MAX_EXTRA_HEADERS: usize = 5;

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/developer/v1/webhooks", get(list).post(create))
        .route("/developer/v1/webhooks/{id}", get(get_one).delete(delete))
        .route("/developer/v1/webhooks/{id}/verify", post(verify))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn render(s: &RampWebhookSub) -> Value {
    let headers: serde_json::Map<String, Value> = s
        .additional_headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "id": s.id, "business_id": s.business_id, "endpoint_url": s.endpoint_url,
        "event_types": s.event_types, "additional_headers": headers, "status": s.status,
        "created_at": time(s.created_at), "updated_at": time(s.updated_at),
    })
}

fn random_hex(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(raw)
}

fn not_found() -> Response {
    err(
        StatusCode::NOT_FOUND,
        "DEVELOPER_0404",
        "Webhook subscription not found",
        None,
    )
}

/// Create the world's own subscriptions (one active per business, to the
/// configured URL, signed with the configured secret) once, and keep them
/// following the configuration (its URL and secret may change between
/// starts; RowCol's seeder knows only the configured ones).
pub(crate) fn seed_webhook_subscriptions(st: &mut SimState, config: &SandboxConfig) {
    let now = Utc::now();
    if !st.ramp_webhook_subs.seeded {
        for c in &st.clients {
            st.ramp_webhook_subs.subs.push(RampWebhookSub {
                id: uuid::Uuid::new_v4().to_string(),
                business_id: c.ramp.business_id.clone(),
                endpoint_url: String::new(),
                event_types: vec!["bills.paid".into()],
                additional_headers: Vec::new(),
                secret: String::new(),
                status: "active".into(),
                challenge: random_hex(16),
                created_at: now,
                updated_at: now,
                seeded: true,
            });
        }
        st.ramp_webhook_subs.seeded = true;
    }
    for s in st.ramp_webhook_subs.subs.iter_mut().filter(|s| s.seeded) {
        s.endpoint_url = config.ramp_webhook_url.clone();
        s.secret = config.ramp_webhook_secret.expose().to_owned();
    }
}

/// The world's own subscription for client `c`'s business, if not deleted.
pub(crate) fn seeded_subscription<'a>(
    st: &'a SimState,
    c: &SimClient,
) -> Option<&'a RampWebhookSub> {
    st.ramp_webhook_subs
        .subs
        .iter()
        .find(|s| s.seeded && s.business_id == c.ramp.business_id)
}

async fn create(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            "DEVELOPER_7000",
            "Request body is not valid JSON",
            None,
        );
    };
    let Some(url) = v.get("endpoint_url").filter(|x| !x.is_null()) else {
        return *missing("endpoint_url");
    };
    let Some(url) = url
        .as_str()
        .filter(|u| reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
    else {
        return *invalid("endpoint_url", "Not a valid URL.");
    };
    let Some(types) = v.get("event_types").filter(|x| !x.is_null()) else {
        return *missing("event_types");
    };
    let types: Option<Vec<String>> = types.as_array().filter(|a| !a.is_empty()).and_then(|a| {
        a.iter()
            .map(|t| {
                t.as_str()
                    .filter(|t| EVENT_TYPES.contains(t))
                    .map(str::to_owned)
            })
            .collect()
    });
    let Some(mut types) = types else {
        return *invalid(
            "event_types",
            &format!("Must be a non-empty list of: {}.", EVENT_TYPES.join(", ")),
        );
    };
    types.sort_unstable();
    types.dedup();
    let extra = match v.get("additional_headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) if m.len() <= MAX_EXTRA_HEADERS => {
            let mut out = Vec::new();
            for (k, val) in m {
                let ok_name = axum::http::HeaderName::from_bytes(k.as_bytes()).is_ok();
                match val.as_str() {
                    Some(s) if ok_name && axum::http::HeaderValue::from_str(s).is_ok() => {
                        out.push((k.clone(), s.to_owned()))
                    }
                    _ => {
                        return *invalid(
                            "additional_headers",
                            "Header names and values must be valid HTTP header text.",
                        )
                    }
                }
            }
            out
        }
        Some(_) => {
            return *invalid(
                "additional_headers",
                &format!("At most {MAX_EXTRA_HEADERS} headers, as an object of strings."),
            )
        }
    };
    let now = Utc::now();
    let business_id = st.clients[ci].ramp.business_id.clone();
    let sub = RampWebhookSub {
        id: uuid::Uuid::new_v4().to_string(),
        business_id: business_id.clone(),
        endpoint_url: url.to_owned(),
        event_types: types,
        additional_headers: extra,
        secret: random_hex(32),
        status: "pending_verification".into(),
        challenge: random_hex(24),
        created_at: now,
        updated_at: now,
        seeded: false,
    };
    // The handshake: a verification event to the new endpoint.
    let event_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "id": event_id, "type": "webhooks.verification", "created_at": time(now),
        "business_id": business_id, "object": {"id": sub.id}, "challenge": sub.challenge,
    })
    .to_string();
    st.webhooks.push(WebhookRec {
        event_id,
        business_id,
        body,
        attempts: 0,
        next_attempt_at: sb.inner.clock.now(),
        status: WebhookStatus::Pending,
        last_http_status: None,
        subscription_id: Some(sub.id.clone()),
        in_flight: false,
        rail: WebhookRail::Ramp,
        item_id: None,
        url: None,
    });
    let mut out = render(&sub);
    out["secret"] = json!(sub.secret);
    st.ramp_webhook_subs.subs.push(sub);
    sb.persist_logged(&st).await;
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn list(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let business = &st.clients[ci].ramp.business_id;
    let items = st
        .ramp_webhook_subs
        .subs
        .iter()
        .filter(|s| s.business_id == *business)
        .map(|s| (s.id.clone(), render(s)))
        .collect();
    match super::render::paginate(items, &q, &super::list_url(&sb, "webhooks")) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

/// This business's subscription `id` (index), if any.
fn find(st: &SimState, ci: usize, id: &str) -> Option<usize> {
    let business = &st.clients[ci].ramp.business_id;
    st.ramp_webhook_subs
        .subs
        .iter()
        .position(|s| s.id == id && s.business_id == *business)
}

async fn get_one(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match find(&st, ci, &id) {
        Some(i) => Json(render(&st.ramp_webhook_subs.subs[i])).into_response(),
        None => not_found(),
    }
}

async fn delete(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(i) = find(&st, ci, &id) else {
        return not_found();
    };
    st.ramp_webhook_subs.subs.remove(i);
    sb.persist_logged(&st).await;
    StatusCode::NO_CONTENT.into_response()
}

async fn verify(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (mut st, ci) = match authed(&sb, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(i) = find(&st, ci, &id) else {
        return not_found();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            "DEVELOPER_7000",
            "Request body is not valid JSON",
            None,
        );
    };
    let Some(challenge) = v.get("challenge").and_then(Value::as_str) else {
        return *missing("challenge");
    };
    let sub = &mut st.ramp_webhook_subs.subs[i];
    if !constant_time_eq(challenge.as_bytes(), sub.challenge.as_bytes()) {
        return err(
            StatusCode::BAD_REQUEST,
            "DEVELOPER_7000",
            "Invalid challenge",
            Some("challenge"),
        );
    }
    if sub.status != "active" {
        sub.status = "active".into();
        sub.updated_at = Utc::now();
    }
    let out = render(sub);
    sb.persist_logged(&st).await;
    Json(out).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
