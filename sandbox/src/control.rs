//! The control routes (sandbox only, JSON): `POST /control/advance`,
//! `GET`/`POST /control/faults` and `GET /control/state`, as documented on
//! the crate. Every POST must carry `Content-Type: application/json`
//! (415 `{"error": …}` otherwise), so other sites cannot drive them.

use crate::sim_state::{RampStatus, WebhookStatus};
use crate::{Faults, Sandbox};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub(crate) fn error(msg: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()}))).into_response()
}

/// POSTs must say `Content-Type: application/json`. A browser sends that
/// cross-site only after a CORS preflight (which nothing here answers), so a
/// page elsewhere cannot drive the controls with a form or a `text/plain`
/// fetch.
/// The 415 answer, unless the request says JSON.
pub(crate) fn unless_json(headers: &HeaderMap) -> Option<Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    (!is_json).then(|| {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(json!({"error": "Content-Type must be application/json"})),
        )
            .into_response()
    })
}

pub(crate) async fn advance(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unless_json(&headers) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error("body must be JSON like {\"days\": 1}");
    };
    let days = match v.get("days").and_then(Value::as_i64) {
        Some(d) if (1..=90).contains(&d) => d,
        Some(_) => return error("days must be between 1 and 90"),
        None => return error("days (an integer 1..=90) is required"),
    };
    match sb.advance(chrono::Duration::days(days)).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "sandbox advance failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "advance failed"})),
            )
                .into_response()
        }
    }
}

pub(crate) async fn faults_get(State(sb): State<Sandbox>) -> Json<Faults> {
    Json(sb.faults().await)
}

pub(crate) async fn faults_set(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unless_json(&headers) {
        return r;
    }
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            sb.set_faults(f.clone()).await;
            Json(f).into_response()
        }
        Err(e) => error(format!("faults do not parse: {e}")),
    }
}

pub(crate) async fn state(State(sb): State<Sandbox>) -> Json<Value> {
    let st = sb.inner.state.lock().await;
    let mut open = 0;
    let mut paid = 0;
    let mut qbo_open = 0;
    let mut qbo_payments = 0;
    for c in &st.clients {
        for b in &c.ramp.bills {
            match b.status {
                RampStatus::Open => open += 1,
                RampStatus::Paid => paid += 1,
            }
        }
        qbo_open += c.qbo.bills.iter().filter(|b| b.balance_cents > 0).count();
        qbo_payments += c.qbo.bill_payments.len();
    }
    let count = |s: WebhookStatus| st.webhooks.iter().filter(|w| w.status == s).count();
    Json(json!({
        "today": sb.inner.clock.today(),
        "now": sb.inner.clock.now(),
        "clients": st.clients.len(),
        "ramp_bills": {"OPEN": open, "PAID": paid},
        "qbo_open_bills": qbo_open,
        "qbo_bill_payments": qbo_payments,
        "webhooks": {
            "pending": count(WebhookStatus::Pending),
            "delivered": count(WebhookStatus::Delivered),
            "failed": count(WebhookStatus::Failed),
            "dropped": count(WebhookStatus::Dropped),
            "cancelled": count(WebhookStatus::Cancelled),
        },
    }))
}
