//! Stripe Apps OAuth's token and deauthorize endpoints (authenticated with
//! the app's secret key; OAuth errors as `{"error", "error_description"}`)
//! and `GET /v1/account`.

use super::auth::{api_key, unauthorized};
use crate::oauth::token::{form, grant, oauth_error, same};
use crate::sim_state::SimState;
use crate::{Sandbox, SimRail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::json;

/// The app whose secret key the request carries: its client id.
fn app_authed(st: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let key = api_key(headers);
    let app = st.oauth.apps.as_ref().map(|a| &a.stripe);
    match (key, app) {
        (Some(k), Some(a)) if same(&k, &a.secret) => Ok(a.client_id.clone()),
        (k, _) => Err(Box::new(unauthorized(k.as_deref()))),
    }
}

/// `POST /stripe/v1/oauth/token`.
pub(super) async fn token(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let mut st = sb.inner.state.lock().await;
    let client_id = match app_authed(&st, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(f) = form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body must be a form",
        );
    };
    let issued = match grant(&mut st, SimRail::Stripe, &client_id, &f, false) {
        Ok(i) => i,
        Err(r) => {
            sb.persist_logged(&st).await;
            return *r;
        }
    };
    sb.persist_logged(&st).await;
    Json(json!({
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "token_type": "bearer",
        "stripe_user_id": issued.account,
        "scope": issued.scope,
        "livemode": false,
        "expires_in": issued.expires_in,
    }))
    .into_response()
}

/// `POST /stripe/v1/oauth/deauthorize`: every grant of the app for the
/// account dies.
pub(super) async fn deauthorize(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = sb.inner.state.lock().await;
    let client_id = match app_authed(&st, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(f) = form(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "body must be a form",
        );
    };
    let (Some(cid), Some(user)) = (f.get("client_id"), f.get("stripe_user_id")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and stripe_user_id are required",
        );
    };
    if *cid != client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            &format!("No such application: '{cid}'"),
        );
    }
    let live = st.oauth.revoke_account(SimRail::Stripe, user);
    if live == 0 {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            &format!("This application is not connected to stripe account {user}, or that account does not exist."),
        );
    }
    sb.persist_logged(&st).await;
    Json(json!({"stripe_user_id": user})).into_response()
}

/// `GET /stripe/v1/account`: the account an OAuth access token or a
/// restricted key belongs to.
pub(super) async fn account(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let st = sb.inner.state.lock().await;
    let Some(key) = api_key(&headers) else {
        return unauthorized(None);
    };
    let now = Utc::now();
    let acct = st
        .oauth
        .by_access(SimRail::Stripe, &key, now)
        .map(|g| g.account.clone())
        .or_else(|| {
            st.oauth
                .stripe_accounts
                .iter()
                .find(|a| same(&a.restricted_key, &key))
                .map(|a| a.id.clone())
        });
    let Some(a) = acct.and_then(|id| st.oauth.stripe_accounts.iter().find(|a| a.id == id)) else {
        return unauthorized(Some(&key));
    };
    Json(json!({
        "id": a.id, "object": "account",
        "business_profile": {"name": a.display_name},
        "settings": {"dashboard": {"display_name": a.display_name}},
        "country": "US", "default_currency": "usd",
        "charges_enabled": true, "payouts_enabled": true, "details_submitted": true,
        "type": "standard",
    }))
    .into_response()
}
