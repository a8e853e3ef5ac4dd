//! Plaid webhooks: the ES256 signing key, the bodies, what queues them, and
//! the endpoints around them: `/webhook_verification_key/get`,
//! `/item/webhook/update` and `/sandbox/item/fire_webhook` (under the Plaid
//! mount), plus the control `POST /control/plaid/rotate_webhook_key`.
//!
//! Deliveries go through the one webhook queue (`engine::deliver_due`, on
//! the sandbox clock, with the webhook faults). Each is a POST of JSON to
//! the Item's webhook URL with a `Plaid-Verification` JWT
//! (`{"alg":"ES256","kid":…,"typ":"JWT"}`, claims `{iat,
//! request_body_sha256}`), made afresh on every attempt with the current
//! key. An Item without a webhook URL gets nothing.

use crate::plaid::{authed, client_authed, invalid_field, perr, request_id, Need};
use crate::sim_state::*;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub(crate) fn api_routes() -> Router<Sandbox> {
    Router::new()
        .route("/webhook_verification_key/get", post(verification_key_get))
        .route("/item/webhook/update", post(item_webhook_update))
        .route("/sandbox/item/fire_webhook", post(fire_webhook))
}

// ------------------------------------------------------------------ keys

/// A new P-256 key made now (`created_at`, unix seconds, wall clock).
pub(crate) fn new_key(created_at: i64) -> anyhow::Result<PlaidWebhookKey> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("P-256 key generation failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| anyhow::anyhow!("generated P-256 key rejected: {e}"))?;
    // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        anyhow::bail!("unexpected P-256 public key encoding");
    }
    Ok(PlaidWebhookKey {
        kid: uuid::Uuid::new_v4().to_string(),
        pkcs8: STANDARD.encode(pkcs8.as_ref()),
        x: URL_SAFE_NO_PAD.encode(&point[1..33]),
        y: URL_SAFE_NO_PAD.encode(&point[33..65]),
        created_at,
        expired_at: None,
    })
}

/// Give the world its signing key if it has none (a new world, or one saved
/// before Plaid webhooks existed). Returns whether it changed.
pub(crate) fn ensure_key(st: &mut SimState, now: DateTime<Utc>) -> anyhow::Result<bool> {
    if current_key(st).is_some() {
        return Ok(false);
    }
    st.plaid_webhook_keys.push(new_key(now.timestamp())?);
    Ok(true)
}

/// The key webhooks are signed with now.
pub(crate) fn current_key(st: &SimState) -> Option<&PlaidWebhookKey> {
    st.plaid_webhook_keys
        .iter()
        .rev()
        .find(|k| k.expired_at.is_none())
}

/// The public JWK, as `/webhook_verification_key/get` returns it.
fn jwk(k: &PlaidWebhookKey) -> Value {
    json!({
        "alg": "ES256", "crv": "P-256", "kid": k.kid, "kty": "EC", "use": "sig",
        "x": k.x, "y": k.y, "created_at": k.created_at, "expired_at": k.expired_at,
    })
}

#[derive(Serialize)]
struct Claims<'a> {
    iat: i64,
    request_body_sha256: &'a str,
}

/// The `Plaid-Verification` JWT for `body` (the exact bytes sent).
pub(crate) fn sign(key: &PlaidWebhookKey, body: &[u8], iat: i64) -> anyhow::Result<String> {
    let der = STANDARD.decode(&key.pkcs8)?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("JWT".into());
    let digest = hex::encode(Sha256::digest(body));
    let claims = Claims {
        iat,
        request_body_sha256: &digest,
    };
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_der(&der),
    )?)
}

// --------------------------------------------------------------- queueing

/// The webhook URL of an Item, if it has one.
pub(crate) fn item_webhook<'a>(st: &'a SimState, item_id: &str) -> Option<&'a str> {
    st.plaid_link
        .item_webhooks
        .iter()
        .find(|(i, _)| i == item_id)
        .map(|(_, url)| url.as_str())
        .filter(|u| !u.is_empty())
}

/// A body with the fields every Plaid webhook has, plus `extra`.
fn body(webhook_type: &str, code: &str, item_id: &str, extra: Value) -> Value {
    let mut b = json!({
        "webhook_type": webhook_type, "webhook_code": code, "item_id": item_id,
        "environment": "sandbox",
    });
    if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
        b.extend(extra);
    }
    b
}

/// Queue a webhook about the Item of client `ci` to its webhook URL (none:
/// nothing is queued), first due at `now` (sandbox clock). The body is
/// serialized here, once; those bytes are what is signed and sent on every
/// attempt. Returns whether it was queued.
fn queue(
    st: &mut SimState,
    ci: usize,
    now: DateTime<Utc>,
    webhook_type: &str,
    code: &str,
    extra: Value,
) -> bool {
    let item_id = st.clients[ci].plaid.item_id.clone();
    if st.plaid_link.removed_items.contains(&item_id) {
        return false;
    }
    let Some(url) = item_webhook(st, &item_id).map(str::to_owned) else {
        return false;
    };
    let body = body(webhook_type, code, &item_id, extra).to_string();
    let (status, next_attempt_at) = crate::engine::injected_fate(st, now);
    st.webhooks.push(WebhookRec {
        // Plaid's bodies carry no event id; this one is the queue's own.
        event_id: uuid::Uuid::new_v4().to_string(),
        business_id: String::new(),
        body,
        attempts: 0,
        next_attempt_at,
        status,
        last_http_status: None,
        subscription_id: None,
        in_flight: false,
        rail: WebhookRail::Plaid,
        item_id: Some(item_id),
        url: Some(url),
    });
    true
}

/// ITEM `ERROR` with the ITEM_LOGIN_REQUIRED error: the Item's login broke.
pub(crate) fn login_broken(st: &mut SimState, ci: usize, now: DateTime<Utc>) {
    let error = crate::plaid::login_required_error();
    queue(st, ci, now, "ITEM", "ERROR", json!({ "error": error }));
}

/// ITEM `LOGIN_REPAIRED`, then the transactions held back while the login
/// was broken.
fn login_repaired(st: &mut SimState, ci: usize, now: DateTime<Utc>) {
    queue(st, ci, now, "ITEM", "LOGIN_REPAIRED", json!({}));
    note_new_transactions(st, ci, now);
}

/// Update mode in the client's own Link repaired the Item. Plaid documents
/// `LOGIN_REPAIRED` only for an Item repaired *without* update mode in
/// your app, so by default nothing but the held-back transactions is sent;
/// [`crate::Faults::plaid_login_repaired_after_update_mode`] sends it too.
pub(crate) fn repaired_by_update_mode(st: &mut SimState, ci: usize, now: DateTime<Utc>) {
    if st.faults.plaid_login_repaired_after_update_mode {
        login_repaired(st, ci, now);
    } else {
        note_new_transactions(st, ci, now);
    }
}

/// After the faults changed (`before`: which clients' Items needed a login):
/// an Item the faults broke gets ITEM `ERROR`; one they stopped breaking
/// (repaired outside the app's update mode) gets `LOGIN_REPAIRED`.
pub(crate) fn login_changes(st: &mut SimState, before: &[bool], now: DateTime<Utc>) {
    for (ci, &was) in before.iter().enumerate().take(st.clients.len()) {
        match (was, crate::plaid::needs_login(st, ci)) {
            (false, true) => login_broken(st, ci, now),
            (true, false) => login_repaired(st, ci, now),
            _ => {}
        }
    }
}

/// TRANSACTIONS `SYNC_UPDATES_AVAILABLE` if the Item's log has grown since
/// the last one. As Plaid: only for an Item that has called
/// `/transactions/sync` once, and not while its login is broken (Plaid
/// cannot fetch then; the news waits for the repair).
pub(crate) fn note_new_transactions(st: &mut SimState, ci: usize, now: DateTime<Utc>) {
    if crate::plaid::needs_login(st, ci) {
        return;
    }
    let item = &mut st.clients[ci].plaid;
    let len = item.txns.len();
    if len <= item.txns_announced {
        return;
    }
    item.txns_announced = len;
    if item.sync_started {
        queue(
            st,
            ci,
            now,
            "TRANSACTIONS",
            "SYNC_UPDATES_AVAILABLE",
            sync_flags(),
        );
    }
}

fn sync_flags() -> Value {
    json!({"initial_update_complete": true, "historical_update_complete": true})
}

/// The Item was removed: whatever is still queued about it is not sent.
pub(crate) fn cancel_for_item(st: &mut SimState, item_id: &str) {
    for w in st.webhooks.iter_mut() {
        if w.rail == WebhookRail::Plaid
            && w.status == WebhookStatus::Pending
            && w.item_id.as_deref() == Some(item_id)
        {
            w.status = WebhookStatus::Cancelled;
        }
    }
}

// -------------------------------------------------------------- endpoints

fn missing(field: &str) -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "MISSING_FIELDS",
        &format!("the following required fields are missing: {field}"),
        None,
    )
}

async fn verification_key_get(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (st, v) = match client_authed(&sb, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(kid) = v.get("key_id").and_then(Value::as_str) else {
        return missing("key_id");
    };
    match st.plaid_webhook_keys.iter().find(|k| k.kid == kid) {
        Some(k) => Json(json!({"key": jwk(k), "request_id": request_id()})).into_response(),
        None => perr(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
            "invalid key_id provided. note that key_ids are specific to Plaid environments, and verification requests must be made to the same environment that the webhook was sent from",
            None,
        ),
    }
}

async fn item_webhook_update(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut st, ci, v) = match authed(&sb, &headers, &body, Need::Item).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let webhook = match v.get("webhook") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) if u.is_empty() => None,
        Some(Value::String(u)) if crate::plaid_link::is_url(u) => Some(u.clone()),
        Some(_) => return invalid_field("webhook must be a valid URL"),
    };
    let item_id = st.clients[ci].plaid.item_id.clone();
    let hooks = &mut st.plaid_link.item_webhooks;
    hooks.retain(|(i, _)| *i != item_id);
    if let Some(url) = &webhook {
        hooks.push((item_id, url.clone()));
        let now = sb.inner.clock.now();
        queue(
            &mut st,
            ci,
            now,
            "ITEM",
            "WEBHOOK_UPDATE_ACKNOWLEDGED",
            json!({"new_webhook_url": url, "error": null}),
        );
    }
    sb.persist_logged(&st).await;
    Json(json!({"item": crate::plaid::render_item(&st, ci), "request_id": request_id()}))
        .into_response()
}

/// `webhook_type`s `/sandbox/item/fire_webhook` knows.
const WEBHOOK_TYPES: [&str; 7] = [
    "AUTH",
    "HOLDINGS",
    "INVESTMENTS_TRANSACTIONS",
    "ITEM",
    "LIABILITIES",
    "TRANSACTIONS",
    "ASSETS",
];

/// The sandbox's Items have the Transactions product only.
fn not_enabled(product: &str) -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "SANDBOX_ERROR",
        "SANDBOX_PRODUCT_NOT_ENABLED",
        &format!("The {product} product is not enabled on this item"),
        None,
    )
}

/// What a fire_webhook request asks for, once checked.
enum Fire {
    /// Send this (type, code, extra fields).
    Send(&'static str, &'static str, Value),
    /// Send ITEM `ERROR` (ITEM_LOGIN_REQUIRED); the Item is not changed.
    Error,
    /// Send `LOGIN_REPAIRED`; the Item is not changed.
    Repaired,
    /// Send this ITEM revocation webhook, then the Item's access is gone.
    Revoked(&'static str, Value),
}

/// Why a fire_webhook request is refused.
enum Refused {
    /// 400 INVALID_FIELD with this message.
    Field(String),
    /// 400 SANDBOX_PRODUCT_NOT_ENABLED for this product.
    NotEnabled(&'static str),
}

impl Refused {
    fn response(self) -> Response {
        match self {
            Refused::Field(m) => invalid_field(&m),
            Refused::NotEnabled(p) => not_enabled(p),
        }
    }
}

/// What `webhook_code` (with `webhook_type`, if `given`) fires on an Item
/// whose one account is `account_id`.
fn what_to_fire(
    code: &str,
    given: Option<&str>,
    now: DateTime<Utc>,
    account_id: &str,
) -> Result<Fire, Refused> {
    let mismatch = |t: &str| {
        Refused::Field(format!(
            "webhook_type {t} cannot be used with webhook_code {code}"
        ))
    };
    // The type a code is sent with; another one given is refused.
    let only = |want: &str| match given {
        Some(t) if t != want => Err(mismatch(t)),
        _ => Ok(()),
    };
    match code {
        "SYNC_UPDATES_AVAILABLE" => only("TRANSACTIONS").map(|()| {
            Fire::Send("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE", sync_flags())
        }),
        "DEFAULT_UPDATE" => match given.unwrap_or("TRANSACTIONS") {
            "TRANSACTIONS" => Ok(Fire::Send(
                "TRANSACTIONS",
                "DEFAULT_UPDATE",
                json!({"new_transactions": 0, "error": null}),
            )),
            "AUTH" => Err(Refused::NotEnabled("auth")),
            "IDENTITY" => Err(Refused::NotEnabled("identity")),
            "INVESTMENTS_TRANSACTIONS" | "HOLDINGS" => Err(Refused::NotEnabled("investments")),
            "LIABILITIES" => Err(Refused::NotEnabled("liabilities")),
            t => Err(mismatch(t)),
        },
        "NEW_ACCOUNTS_AVAILABLE" => only("ITEM")
            .map(|()| Fire::Send("ITEM", "NEW_ACCOUNTS_AVAILABLE", json!({"error": null}))),
        // Plaid fires it 7 days ahead of the disconnection.
        "PENDING_DISCONNECT" => only("ITEM").map(|()| {
            let at = (now + Duration::days(7)).to_rfc3339_opts(SecondsFormat::Millis, true);
            Fire::Send(
                "ITEM",
                "PENDING_DISCONNECT",
                json!({"reason": "INSTITUTION_MIGRATION", "disconnect_time": at}),
            )
        }),
        "LOGIN_REPAIRED" => only("ITEM").map(|()| Fire::Repaired),
        "USER_PERMISSION_REVOKED" => only("ITEM").map(|()| {
            let error = crate::plaid::error_object(
                StatusCode::BAD_REQUEST,
                "ITEM_ERROR",
                "USER_PERMISSION_REVOKED",
                "the holder of this account has revoked their permission for your application to access it",
                None,
            );
            Fire::Revoked("USER_PERMISSION_REVOKED", json!({ "error": error }))
        }),
        "USER_ACCOUNT_REVOKED" => only("ITEM").map(|()| {
            Fire::Revoked("USER_ACCOUNT_REVOKED", json!({ "account_id": account_id }))
        }),
        // Plaid's ERROR here is the Assets one unless the type says ITEM.
        "ERROR" => match given {
            Some("ITEM") => Ok(Fire::Error),
            None | Some("ASSETS") => Err(Refused::NotEnabled("assets")),
            Some(t) => Err(mismatch(t)),
        },
        "PRODUCT_READY" => Err(Refused::NotEnabled("assets")),
        "RECURRING_TRANSACTIONS_UPDATE" => Err(Refused::NotEnabled("recurring_transactions")),
        "SMS_MICRODEPOSITS_VERIFICATION" => Err(Refused::NotEnabled("auth")),
        "AUTHORIZATION_GRANTED" => Err(Refused::NotEnabled("transfer")),
        _ => Err(Refused::Field(
            "webhook_code must be one of: DEFAULT_UPDATE, NEW_ACCOUNTS_AVAILABLE, SMS_MICRODEPOSITS_VERIFICATION, AUTHORIZATION_GRANTED, USER_PERMISSION_REVOKED, USER_ACCOUNT_REVOKED, PENDING_DISCONNECT, RECURRING_TRANSACTIONS_UPDATE, LOGIN_REPAIRED, SYNC_UPDATES_AVAILABLE, PRODUCT_READY, ERROR".into(),
        )),
    }
}

async fn fire_webhook(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, v) = match authed(&sb, &headers, &body, Need::Item).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(code) = v.get("webhook_code").and_then(Value::as_str) else {
        return missing("webhook_code");
    };
    let given = match v.get("webhook_type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if WEBHOOK_TYPES.contains(&t.as_str()) => Some(t.as_str()),
        Some(_) => {
            return invalid_field(&format!(
                "webhook_type must be one of: {}",
                WEBHOOK_TYPES.join(", ")
            ))
        }
    };
    let now = sb.inner.clock.now();
    let account_id = st.clients[ci].plaid.account.account_id.clone();
    let fire = what_to_fire(code, given, now, &account_id).map_err(Refused::response);
    let fire = match fire {
        Ok(f) => f,
        Err(r) => return r,
    };
    if item_webhook(&st, &st.clients[ci].plaid.item_id).is_none() {
        return perr(
            StatusCode::BAD_REQUEST,
            "SANDBOX_ERROR",
            "SANDBOX_WEBHOOK_INVALID",
            "Webhook for this item is either not set up, or invalid. Please update the item's webhook and try again.",
            None,
        );
    }
    match fire {
        Fire::Send(t, c, extra) => {
            queue(&mut st, ci, now, t, c, extra);
        }
        // Plaid documents fire_webhook as firing the webhook, nothing
        // more: the Item's state is what /sandbox/item/reset_login (or a
        // fault) made it. A receiver that believes the news over the Item
        // is caught here.
        Fire::Error => login_broken(&mut st, ci, now),
        Fire::Repaired => {
            queue(&mut st, ci, now, "ITEM", "LOGIN_REPAIRED", json!({}));
        }
        // The user took the access away: the webhook goes out (and what was
        // queued before it), then every token of the Item answers
        // ITEM_NOT_FOUND ("has had access removed by the user").
        Fire::Revoked(c, extra) => {
            queue(&mut st, ci, now, "ITEM", c, extra);
            crate::plaid_link::remove_item(&mut st, ci, Utc::now());
        }
    }
    sb.persist_logged(&st).await;
    Json(json!({"webhook_fired": true, "request_id": request_id()})).into_response()
}

/// `POST /control/plaid/rotate_webhook_key`: a new signing key; the old
/// one stays retrievable with `expired_at` set to now. Answers both JWKs.
pub(crate) async fn rotate_key(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    if let Some(r) = crate::control::unless_json(&headers) {
        return r;
    }
    let now = Utc::now().timestamp();
    let fresh = match new_key(now) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(error = %e, "plaid webhook key generation failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "key generation failed"})),
            )
                .into_response();
        }
    };
    let mut st = sb.inner.state.lock().await;
    let mut expired = Vec::new();
    for k in st.plaid_webhook_keys.iter_mut() {
        if k.expired_at.is_none() {
            k.expired_at = Some(now);
            expired.push(jwk(k));
        }
    }
    let out = json!({"key": jwk(&fresh), "expired": expired});
    st.plaid_webhook_keys.push(fresh);
    sb.persist_logged(&st).await;
    Json(out).into_response()
}

#[cfg(test)]
mod tests;
