//! `POST /control/oauth/{revoke,expire,settings}` and
//! `GET /control/credentials` (sandbox only, JSON).

use super::grants::{default_scope, GrantOwner};
use super::{account_exists, OAuthSettings};
use crate::control::{error, unless_json};
use crate::{Sandbox, SimRail};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Target {
    rail: SimRail,
    account: String,
}

fn target(headers: &HeaderMap, body: &[u8]) -> Result<Target, Box<Response>> {
    if let Some(r) = unless_json(headers) {
        return Err(Box::new(r));
    }
    let t: Target = serde_json::from_slice(body).map_err(|_| {
        error("body must be JSON like {\"rail\": \"qbo|ramp|stripe\", \"account\": \"…\"}")
    })?;
    if t.rail == SimRail::Plaid {
        return Err(Box::new(error("rail must be qbo, ramp or stripe")));
    }
    Ok(t)
}

fn not_found(t: &Target) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no such account: {}", t.account)})),
    )
        .into_response()
}

pub(crate) async fn revoke(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let t = match target(&headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let mut st = sb.inner.state.lock().await;
    if !account_exists(&st, t.rail, &t.account) {
        return not_found(&t);
    }
    let revoked = st.oauth.revoke_account(t.rail, &t.account);
    sb.persist_logged(&st).await;
    Json(json!({"revoked_grants": revoked})).into_response()
}

pub(crate) async fn expire(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let t = match target(&headers, &body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let mut st = sb.inner.state.lock().await;
    if !account_exists(&st, t.rail, &t.account) {
        return not_found(&t);
    }
    st.oauth.expire_account(t.rail, &t.account, Utc::now());
    sb.persist_logged(&st).await;
    Json(json!({"expired": true})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    qbo_refresh_grace_secs: Option<u32>,
    ramp_access_expires_in: Option<u32>,
}

pub(crate) async fn settings(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unless_json(&headers) {
        return r;
    }
    let p: SettingsPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(format!("settings do not parse: {e}")),
    };
    if p.ramp_access_expires_in == Some(0) {
        return error("ramp_access_expires_in must be at least 1");
    }
    let mut st = sb.inner.state.lock().await;
    let s: &mut OAuthSettings = &mut st.oauth.settings;
    if let Some(g) = p.qbo_refresh_grace_secs {
        s.qbo_refresh_grace_secs = g;
    }
    if let Some(e) = p.ramp_access_expires_in {
        s.ramp_access_expires_in = e;
    }
    let out = *s;
    sb.persist_logged(&st).await;
    Json(out).into_response()
}

/// Everything an outside program needs to use the simulators as it would
/// the real services. The per-client tokens are grants of their own (owner
/// external), issued on the first call and persisted: refreshing them never
/// touches RowCol's. An external grant whose newest access token has expired
/// gets a fresh one here (its refresh token is kept).
pub(crate) async fn credentials(State(sb): State<Sandbox>) -> Response {
    let now = Utc::now();
    let base = sb.inner.config.public_base.trim_end_matches('/').to_owned();
    let mut st = sb.inner.state.lock().await;
    let mut changed = false;
    let mut clients = vec![];
    for i in 0..st.clients.len() {
        let name = st.clients[i].name.clone();
        let stripe = st.oauth.stripe_account_of(&name).cloned();
        let realm = st.clients[i].qbo.realm_id.clone();
        let business = st.clients[i].ramp.business_id.clone();
        let acct = stripe.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        let mut tokens = |rail: SimRail, account: &str| -> Value {
            if account.is_empty() {
                return Value::Null;
            }
            let id = match st.oauth.external(rail, account) {
                Some(g) => g.id.clone(),
                None => {
                    changed = true;
                    st.oauth.issue(
                        rail,
                        account,
                        GrantOwner::External,
                        default_scope(rail),
                        now,
                        None,
                    )
                }
            };
            let fresh = st
                .oauth
                .grants
                .iter()
                .find(|g| g.id == id)
                .and_then(|g| g.access.last())
                .is_some_and(|a| a.expires_at > now);
            if !fresh {
                st.oauth.mint_access(&id, now);
                changed = true;
            }
            let Some(g) = st.oauth.grants.iter().find(|g| g.id == id) else {
                return Value::Null;
            };
            json!({
                "access_token": g.access.last().map(|a| a.token.clone()),
                "access_expires_at": g.access.last().map(|a| a.expires_at),
                "refresh_token": g.refresh,
            })
        };
        let qbo = tokens(SimRail::Qbo, &realm);
        let ramp = tokens(SimRail::Ramp, &business);
        let stripe_tokens = tokens(SimRail::Stripe, &acct);
        let merge = |mut v: Value, extra: Value| {
            if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            v
        };
        // Plaid: an access token of the outside program's own for the item.
        let item = st.clients[i].plaid.item_id.clone();
        let plaid_token = match st
            .plaid_link
            .access_tokens
            .iter()
            .find(|t| t.external && t.item_id == item)
        {
            Some(t) => t.access_token.clone(),
            None => {
                let t = format!("access-sandbox-{}", uuid::Uuid::new_v4());
                st.plaid_link
                    .access_tokens
                    .push(crate::sim_state::AccessTokenRec {
                        access_token: t.clone(),
                        item_id: item.clone(),
                        created_at: now,
                        external: true,
                    });
                changed = true;
                t
            }
        };
        let c = &st.clients[i];
        clients.push(json!({
            "name": c.name,
            "qbo": merge(json!({"realm_id": realm}), qbo),
            "ramp": merge(json!({"business_id": business}), ramp),
            "plaid": {
                "item_id": c.plaid.item_id,
                "institution_id": c.plaid.institution_id,
                "access_token": plaid_token,
            },
            "stripe": merge(json!({
                "account_id": acct,
                "secret_key": stripe.as_ref().map(|a| a.restricted_key.clone()),
                "restricted_key": stripe.as_ref().map(|a| a.restricted_key.clone()),
            }), stripe_tokens),
        }));
    }
    if changed {
        sb.persist_logged(&st).await;
    }
    let Some(apps) = st.oauth.apps.as_ref() else {
        return error("the provider apps are missing");
    };
    let cfg = &sb.inner.config;
    let pair = |p: (&str, &str)| json!({"username": p.0, "password": p.1});
    Json(json!({
        "qbo": {
            "client_id": apps.qbo.client_id, "client_secret": apps.qbo.secret,
            "authorize_url": format!("{base}/intuit/connect/oauth2"),
            "token_url": format!("{base}/qbo/oauth2/v1/tokens/bearer"),
            "revoke_url": format!("{base}/qbo/v2/oauth2/tokens/revoke"),
            "base_url": format!("{base}/qbo"),
            "scope": default_scope(SimRail::Qbo),
            // The app's webhook settings: where QBO webhooks go and the
            // verifier token `intuit-signature` is made with.
            "webhook_url": cfg.qbo_webhook_url,
            "webhook_verifier_token": cfg.qbo_webhook_verifier.expose(),
            "webhook_format": cfg.qbo_webhook_format,
        },
        "ramp": {
            "client_id": apps.ramp.client_id, "client_secret": apps.ramp.secret,
            "authorize_url": format!("{base}/ramp-app/v1/authorize"),
            "token_url": format!("{base}/ramp/developer/v1/token"),
            "revoke_url": format!("{base}/ramp/developer/v1/token/revoke"),
            "base_url": format!("{base}/ramp"),
            "scope": default_scope(SimRail::Ramp),
        },
        "plaid": {
            "client_id": cfg.plaid_client_id, "secret": cfg.plaid_secret.expose(),
            "base_url": format!("{base}/plaid"),
        },
        "stripe": {
            "client_id": apps.stripe.client_id, "secret_key": apps.stripe.secret,
            "authorize_url": format!("{base}/stripe-marketplace/oauth/v2/authorize"),
            "token_url": format!("{base}/stripe/v1/oauth/token"),
            "deauthorize_url": format!("{base}/stripe/v1/oauth/deauthorize"),
            "base_url": format!("{base}/stripe"),
        },
        "redirect_uris": cfg.redirect_uris,
        "sign_in": {
            "qbo": pair(super::QBO_SIGN_IN),
            "ramp": pair(super::RAMP_SIGN_IN),
            "stripe": pair(super::STRIPE_SIGN_IN),
            "plaid": pair(super::PLAID_SIGN_IN),
        },
        "clients": clients,
    }))
    .into_response()
}
