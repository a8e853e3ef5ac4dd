//! The Stripe simulator (minimal): Stripe Apps OAuth's token and
//! deauthorize endpoints and `GET /v1/account`. `Request-Id` on every
//! response; errors in Stripe's `{"error": {…}}` envelope, OAuth errors as
//! `{"error", "error_description"}`.

use crate::oauth::token::{basic_auth, form, grant, oauth_error, same};
use crate::state::SimState;
use crate::wire::bearer_token;
use crate::{Sandbox, SimRail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::json;

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/v1/oauth/token", post(token))
        .route("/v1/oauth/deauthorize", post(deauthorize))
        .route("/v1/account", get(account))
        .layer(axum::middleware::map_response(add_request_id))
}

async fn add_request_id(mut res: Response) -> Response {
    let id = format!("req_{}", &uuid::Uuid::new_v4().simple().to_string()[..14]);
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("request-id", v);
    }
    res
}

fn stripe_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"type": kind, "message": message}})),
    )
        .into_response()
}

/// An injected failure, as Stripe answers it.
pub(crate) fn injected(status: StatusCode) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return stripe_error(
            status,
            "invalid_request_error",
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        );
    }
    stripe_error(
        status,
        "api_error",
        "An unknown error occurred (injected by the sandbox)",
    )
}

/// The key of a request: `Bearer <key>` or Basic with the key as user name.
fn api_key(headers: &HeaderMap) -> Option<String> {
    bearer_token(headers)
        .map(str::to_owned)
        .or_else(|| basic_auth(headers).map(|(user, _)| user))
        .filter(|k| !k.is_empty())
}

/// A key as Stripe shows it in errors: its prefix and last four.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map(|(i, _)| key[..=i].chars().count())
        .unwrap_or(0);
    if chars.len() <= prefix_len + 4 {
        return "*".repeat(chars.len());
    }
    let prefix: String = chars[..prefix_len].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}{}{tail}", "*".repeat(chars.len() - prefix_len - 4))
}

fn unauthorized(key: Option<&str>) -> Response {
    let msg = match key {
        Some(k) => format!("Invalid API Key provided: {}", mask(k)),
        None => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".into(),
    };
    stripe_error(StatusCode::UNAUTHORIZED, "invalid_request_error", &msg)
}

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
async fn token(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
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
async fn deauthorize(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
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
async fn account(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_to_prefix_and_last_four() {
        assert_eq!(mask("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(mask("rk_test_1234"), "************");
        assert_eq!(mask("nounderscorekey9876"), "***************9876");
    }
}
