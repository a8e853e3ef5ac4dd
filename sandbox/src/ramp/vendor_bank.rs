//! `POST /control/ramp/vendor_bank_change` (sandbox control, JSON): the
//! vendor's bank account on Ramp changes, as when a vendor (or someone
//! posing as one) sends new bank details. The old account is gone from
//! `/vendors/{id}/accounts`; the new one is the default.

use crate::control::{error, unless_json};
use crate::sim_state::SimState;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    business_id: String,
    vendor_id: String,
}

/// Vendor `vi` of client `ci` gets a new bank account (the old one is gone):
/// returns the previous account id.
pub(crate) fn change_account(st: &mut SimState, ci: usize, vi: usize) -> String {
    let seq = st.next_seq();
    let v = &mut st.clients[ci].ramp.vendors[vi];
    v.account_last_four = format!("{:04}", (seq * 7919) % 10_000);
    std::mem::replace(&mut v.account_id, uuid::Uuid::new_v4().to_string())
}

pub(crate) async fn change(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = unless_json(&headers) {
        return r;
    }
    let Ok(c) = serde_json::from_slice::<Change>(&body) else {
        return error("body must be JSON like {\"business_id\": \"…\", \"vendor_id\": \"…\"}");
    };
    let mut st = sb.inner.state.lock().await;
    let found = st.clients.iter().enumerate().find_map(|(ci, cl)| {
        (cl.ramp.business_id == c.business_id)
            .then(|| cl.ramp.vendors.iter().position(|v| v.id == c.vendor_id))
            .flatten()
            .map(|vi| (ci, vi))
    });
    let Some((ci, vi)) = found else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such vendor in that business"})),
        )
            .into_response();
    };
    let previous = change_account(&mut st, ci, vi);
    let v = &st.clients[ci].ramp.vendors[vi];
    let out = json!({
        "vendor_id": v.id, "previous_account_id": previous,
        "account_id": v.account_id, "account_last_four": v.account_last_four,
    });
    sb.persist_logged(&st).await;
    Json(out).into_response()
}
