//! Plaid Link, Hosted-Link style, and the item lifecycle around it:
//! `/link/token/create`, `/link/token/get`, `/item/public_token/exchange`,
//! `/item/remove` and `/sandbox/public_token/create` (under the Plaid mount),
//! plus the Link pages a browser walks through (see [`pages`], mounted at
//! `/plaid-link`, outside the rail's fault layer).
//!
//! A bank login (institution + business) is the item: linking the same
//! business's account again gives the same `item_id` and one more access
//! token; every issued token works until `/item/remove`. After a removal a
//! new link makes a new item (a new `item_id`). Token and session times are
//! wall clock (`Utc::now`), not the sandbox clock.

pub(crate) mod pages;

use crate::plaid::{
    client_authed, find_access_token, invalid_access_token, invalid_field, item_not_found, perr,
    request_id, TokenLookup,
};
use crate::sim_state::*;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Plaid Sandbox's test credentials.
pub const LINK_USERNAME: &str = "user_good";
pub const LINK_PASSWORD: &str = "pass_good";

/// A link token lasts 4 h, or 30 min in update mode; a public token 30 min.
const LINK_TOKEN_HOURS: i64 = 4;
const UPDATE_LINK_TOKEN_MINUTES: i64 = 30;
const PUBLIC_TOKEN_MINUTES: i64 = 30;

const LANGUAGES: [&str; 17] = [
    "da", "nl", "en", "et", "fr", "de", "hi", "it", "lv", "lt", "no", "pl", "pt", "ro", "es", "sv",
    "vi",
];
const COUNTRY_CODES: [&str; 20] = [
    "US", "GB", "ES", "NL", "FR", "IE", "CA", "DE", "IT", "PL", "DK", "NO", "SE", "EE", "LT", "LV",
    "PT", "BE", "AT", "FI",
];
/// Plaid's `Products` that Link can be initialised with (`balance` cannot).
const PRODUCTS: [&str; 21] = [
    "assets",
    "auth",
    "beacon",
    "identity",
    "identity_match",
    "investments",
    "investments_auth",
    "liabilities",
    "payment_initiation",
    "identity_verification",
    "transactions",
    "credit_details",
    "income",
    "income_verification",
    "standing_orders",
    "transfer",
    "employment",
    "recurring_transactions",
    "signal",
    "statements",
    "processor_payments",
];
/// The institutions of the world are US banks.
const BANK_COUNTRY: &str = "US";

pub(crate) fn api_routes() -> Router<Sandbox> {
    Router::new()
        .route("/link/token/create", post(link_token_create))
        .route("/link/token/get", post(link_token_get))
        .route("/item/public_token/exchange", post(public_token_exchange))
        .route("/item/remove", post(item_remove))
        .route(
            "/sandbox/public_token/create",
            post(sandbox_public_token_create),
        )
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn random_hex(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(raw)
}

fn missing_fields(fields: &[&str]) -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "MISSING_FIELDS",
        &format!(
            "the following required fields are missing: {}",
            fields.join(", ")
        ),
        None,
    )
}

/// The world's banks: (institution id, name), in first-seen order.
pub(crate) fn banks(st: &SimState) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for c in &st.clients {
        if !out.iter().any(|(id, _)| *id == c.plaid.institution_id) {
            out.push((
                c.plaid.institution_id.clone(),
                c.plaid.institution_name.clone(),
            ));
        }
    }
    out
}

/// A non-empty array of strings, each one allowed by `ok`; `None` if not.
fn string_list(v: &Value, ok: impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let arr = v.as_array()?;
    if arr.is_empty() {
        return None;
    }
    arr.iter()
        .map(|x| x.as_str().filter(|s| ok(s)).map(str::to_owned))
        .collect()
}

/// An absolute http(s) URL.
pub(crate) fn is_url(s: &str) -> bool {
    reqwest::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

async fn link_token_create(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, v) = match client_authed(&sb, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let present = |k: &str| v.get(k).is_some_and(|x| !x.is_null());
    let update_token = v.get("access_token").and_then(Value::as_str);
    let mut missing = Vec::new();
    for k in ["client_name", "language", "country_codes"] {
        if !present(k) {
            missing.push(k);
        }
    }
    if !present("user") && !present("user_id") {
        missing.push("user");
    }
    if !present("products") && update_token.is_none() {
        missing.push("products");
    }
    if !missing.is_empty() {
        return missing_fields(&missing);
    }
    let Some(client_name) = v["client_name"].as_str().filter(|s| !s.is_empty()) else {
        return invalid_field("client_name must be a non-empty string");
    };
    let Some(language) = v["language"].as_str().filter(|l| LANGUAGES.contains(l)) else {
        return invalid_field(&format!(
            "language must be one of: {}",
            LANGUAGES.join(", ")
        ));
    };
    let Some(country_codes) = string_list(&v["country_codes"], |c| COUNTRY_CODES.contains(&c))
    else {
        return invalid_field(
            "country_codes must be a non-empty list of supported ISO-3166-1 alpha-2 country codes",
        );
    };
    if present("user") {
        let ok = v["user"]
            .get("client_user_id")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        if !ok {
            return invalid_field("user.client_user_id must be a non-empty string");
        }
    } else if v["user_id"].as_str().is_none_or(str::is_empty) {
        return invalid_field("user_id must be a non-empty string");
    }
    let products = if present("products") {
        match string_list(&v["products"], |p| PRODUCTS.contains(&p)) {
            Some(p) => p,
            None => {
                return invalid_field(
                    "products must be a non-empty list of products Link can be initialized with (balance is not one)",
                )
            }
        }
    } else {
        Vec::new()
    };
    // An optional string field; `Err` names the field that is not one.
    let opt_str = |k: &'static str| -> Result<Option<String>, &'static str> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(k),
        }
    };
    let webhook = match opt_str("webhook") {
        Ok(w) => w,
        Err(k) => return invalid_field(&format!("{k} must be a string")),
    };
    if webhook.as_deref().is_some_and(|w| !is_url(w)) {
        return invalid_field("webhook must be a valid URL");
    }
    let registered = |u: &str| sb.inner.config.redirect_uris.iter().any(|r| r == u);
    let redirect_uri = match opt_str("redirect_uri") {
        Ok(w) => w,
        Err(k) => return invalid_field(&format!("{k} must be a string")),
    };
    if redirect_uri.as_deref().is_some_and(|u| !registered(u)) {
        return invalid_field(
            "OAuth redirect URI must be configured in the developer dashboard. See https://dashboard.plaid.com/team/api",
        );
    }
    let (hosted, completion_redirect_uri) = match v.get("hosted_link") {
        None | Some(Value::Null) => (false, None),
        Some(Value::Object(h)) => match h.get("completion_redirect_uri") {
            None | Some(Value::Null) => (true, None),
            Some(Value::String(u)) if registered(u) => (true, Some(u.clone())),
            Some(_) => {
                return invalid_field(
                    "hosted_link.completion_redirect_uri must be a redirect URI configured in the developer dashboard",
                )
            }
        },
        Some(_) => return invalid_field("hosted_link must be an object"),
    };
    let update_item = match update_token {
        None => None,
        Some(t) => match find_access_token(&st, t) {
            TokenLookup::Live(ci) => Some(st.clients[ci].plaid.item_id.clone()),
            TokenLookup::Removed => return item_not_found(),
            TokenLookup::Unknown => return invalid_access_token(),
        },
    };
    let now = Utc::now();
    let expiration = if update_item.is_some() {
        now + Duration::minutes(UPDATE_LINK_TOKEN_MINUTES)
    } else {
        now + Duration::hours(LINK_TOKEN_HOURS)
    };
    let rec = LinkTokenRec {
        link_token: format!("link-sandbox-{}", uuid::Uuid::new_v4()),
        hosted_id: random_hex(24),
        hosted,
        created_at: now,
        expiration,
        client_name: client_name.to_owned(),
        language: language.to_owned(),
        country_codes,
        products,
        webhook,
        redirect_uri,
        completion_redirect_uri,
        update_item,
        session: None,
    };
    let mut out = json!({
        "link_token": rec.link_token, "expiration": rfc3339(rec.expiration), "request_id": request_id(),
    });
    if rec.hosted {
        out["hosted_link_url"] = json!(format!(
            "{}/plaid-link/hl/{}",
            sb.inner.config.public_base.trim_end_matches('/'),
            rec.hosted_id
        ));
    }
    // Session data is kept for six hours after a token's expiry.
    st.plaid_link
        .link_tokens
        .retain(|t| t.expiration + Duration::hours(6) > now);
    st.plaid_link.link_tokens.push(rec);
    sb.persist_logged(&st).await;
    Json(out).into_response()
}

fn invalid_link_token() -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
        "INVALID_LINK_TOKEN",
        "provided link token is in an invalid format. expected format: link-<environment>-<identifier>",
        None,
    )
}

fn render_session(s: &LinkSessionRec) -> Value {
    let results = match &s.result {
        Some(r) if s.step == LinkStep::Finished => json!({
            "item_add_results": [{
                "public_token": r.public_token,
                "institution": {"name": r.institution_name, "institution_id": r.institution_id},
                "accounts": [{"id": r.account_id, "name": r.account_name, "mask": r.account_mask,
                    "type": "depository", "subtype": "checking", "verification_status": null}],
            }],
            "cra_item_add_results": [], "cra_update_results": [], "bank_income_results": [],
            "payroll_income_results": [], "document_income_results": null,
        }),
        _ => Value::Null,
    };
    let exit = if s.step == LinkStep::Exited {
        let institution = s
            .institution_id
            .as_ref()
            .map(|id| json!({"institution_id": id}));
        json!({"error": null, "metadata": {
            "institution": institution, "status": s.exit_status, "link_session_id": s.link_session_id,
            "request_id": request_id(),
        }})
    } else {
        Value::Null
    };
    json!({
        "link_session_id": s.link_session_id, "started_at": rfc3339(s.started_at),
        "finished_at": s.finished_at.map(rfc3339), "events": [], "results": results, "exit": exit,
    })
}

async fn link_token_get(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (st, v) = match client_authed(&sb, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(token) = v.get("link_token").and_then(Value::as_str) else {
        return missing_fields(&["link_token"]);
    };
    let Some(t) = st
        .plaid_link
        .link_tokens
        .iter()
        .find(|t| t.link_token == token)
    else {
        return invalid_link_token();
    };
    let sessions: Vec<Value> = t.session.iter().map(render_session).collect();
    Json(json!({
        "link_token": t.link_token, "created_at": rfc3339(t.created_at), "expiration": rfc3339(t.expiration),
        "link_sessions": sessions,
        "metadata": {
            "initial_products": t.products, "webhook": t.webhook, "country_codes": t.country_codes,
            "language": t.language, "redirect_uri": t.redirect_uri, "client_name": t.client_name,
            "institution_data": null, "account_filters": null,
        },
        "request_id": request_id(),
    }))
    .into_response()
}

fn invalid_public_token(msg: &str) -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "INVALID_INPUT",
        "INVALID_PUBLIC_TOKEN",
        msg,
        None,
    )
}

/// How long a new Item's initial transaction pull takes (sandbox clock):
/// until then `/transactions/sync` answers PRODUCT_NOT_READY. Plaid gives
/// no figure; its sandbox is quick, production can take minutes.
pub(crate) const INITIAL_PULL_SECS: i64 = 10;

/// The item of client `ci`, made anew if the old one was removed (a new
/// login after `/item/remove` is a new item). Returns its id.
pub(crate) fn live_item(st: &mut SimState, ci: usize, now: DateTime<Utc>) -> String {
    let old = st.clients[ci].plaid.item_id.clone();
    if !st.plaid_link.removed_items.contains(&old) {
        return old;
    }
    let mut id = crate::world::random_token("");
    id.truncate(37);
    let item = &mut st.clients[ci].plaid;
    item.item_id = id.clone();
    item.login_required = false;
    // A new Item: no SYNC_UPDATES_AVAILABLE until it has synced once.
    item.sync_started = false;
    item.txns_announced = item.txns.len();
    item.transactions_ready_at = Some(now + Duration::seconds(INITIAL_PULL_SECS));
    id
}

/// Issue a public token for the item of client `ci`.
pub(crate) fn issue_public_token(
    st: &mut SimState,
    ci: usize,
    webhook: Option<String>,
    now: DateTime<Utc>,
) -> String {
    let item_id = live_item(st, ci, now);
    let token = format!("public-sandbox-{}", uuid::Uuid::new_v4());
    st.plaid_link
        .public_tokens
        .retain(|p| !p.used && p.created_at + Duration::minutes(PUBLIC_TOKEN_MINUTES) > now);
    st.plaid_link.public_tokens.push(PublicTokenRec {
        public_token: token.clone(),
        item_id,
        created_at: now,
        used: false,
        webhook,
    });
    token
}

async fn public_token_exchange(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut st, v) = match client_authed(&sb, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(token) = v.get("public_token").and_then(Value::as_str) else {
        return missing_fields(&["public_token"]);
    };
    let now = Utc::now();
    let Some(p) = st
        .plaid_link
        .public_tokens
        .iter_mut()
        .find(|p| p.public_token == token)
    else {
        return invalid_public_token(
            "provided public token is in an invalid format. expected format: public-<environment>-<identifier>",
        );
    };
    if p.used {
        return invalid_public_token("provided public token has already been exchanged");
    }
    if p.created_at + Duration::minutes(PUBLIC_TOKEN_MINUTES) <= now {
        return invalid_public_token(
            "provided public token is expired. Public tokens expire 30 minutes after creation at which point they can no longer be exchanged",
        );
    }
    p.used = true;
    let item_id = p.item_id.clone();
    let webhook = p.webhook.clone();
    if st.plaid_link.removed_items.contains(&item_id)
        || !st.clients.iter().any(|c| c.plaid.item_id == item_id)
    {
        sb.persist_logged(&st).await;
        return item_not_found();
    }
    let access_token = format!("access-sandbox-{}", uuid::Uuid::new_v4());
    st.plaid_link.access_tokens.push(AccessTokenRec {
        access_token: access_token.clone(),
        item_id: item_id.clone(),
        created_at: now,
        external: false,
    });
    if let Some(url) = webhook {
        let hooks = &mut st.plaid_link.item_webhooks;
        hooks.retain(|(i, _)| *i != item_id);
        hooks.push((item_id.clone(), url));
    }
    sb.persist_logged(&st).await;
    Json(json!({"access_token": access_token, "item_id": item_id, "request_id": request_id()}))
        .into_response()
}

/// The Item of client `ci` is gone (removed, or its access revoked by the
/// user): every token of it answers ITEM_NOT_FOUND from now on, it has no
/// webhook URL any more, and a new link makes a new Item. Returns its id.
pub(crate) fn remove_item(st: &mut SimState, ci: usize, now: DateTime<Utc>) -> String {
    let item_id = st.clients[ci].plaid.item_id.clone();
    // The seeded token goes with the item: keep it bound to this item id.
    let seeded = std::mem::take(&mut st.clients[ci].plaid.access_token);
    if !seeded.is_empty() {
        st.plaid_link.access_tokens.push(AccessTokenRec {
            access_token: seeded,
            item_id: item_id.clone(),
            created_at: now,
            external: false,
        });
    }
    st.plaid_link.removed_items.push(item_id.clone());
    st.plaid_link.item_webhooks.retain(|(i, _)| *i != item_id);
    item_id
}

async fn item_remove(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, _) =
        match crate::plaid::authed(&sb, &headers, &body, crate::plaid::Need::Item).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let item_id = remove_item(&mut st, ci, Utc::now());
    // Nothing more is sent about a removed Item, retries included.
    crate::plaid_webhooks::cancel_for_item(&mut st, &item_id);
    sb.persist_logged(&st).await;
    Json(json!({"request_id": request_id()})).into_response()
}

async fn sandbox_public_token_create(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut st, v) = match client_authed(&sb, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut missing = Vec::new();
    if v.get("institution_id").is_none_or(Value::is_null) {
        missing.push("institution_id");
    }
    if v.get("initial_products").is_none_or(Value::is_null) {
        missing.push("initial_products");
    }
    if !missing.is_empty() {
        return missing_fields(&missing);
    }
    let Some(institution) = v["institution_id"].as_str() else {
        return invalid_field("institution_id must be a string");
    };
    if string_list(&v["initial_products"], |p| PRODUCTS.contains(&p)).is_none() {
        return invalid_field("initial_products must be a non-empty list of products");
    }
    let options = v.get("options").cloned().unwrap_or(Value::Null);
    let webhook = options
        .get("webhook")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if webhook.as_deref().is_some_and(|w| !is_url(w)) {
        return invalid_field("options.webhook must be a valid URL");
    }
    let username = options
        .get("override_username")
        .and_then(Value::as_str)
        .unwrap_or(LINK_USERNAME);
    let password = options
        .get("override_password")
        .and_then(Value::as_str)
        .unwrap_or(LINK_PASSWORD);
    let Some(ci) = st
        .clients
        .iter()
        .position(|c| c.plaid.institution_id == institution)
    else {
        return perr(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_INSTITUTION",
            "invalid institution_id provided",
            None,
        );
    };
    if username != LINK_USERNAME || password != LINK_PASSWORD {
        return perr(
            StatusCode::BAD_REQUEST,
            "ITEM_ERROR",
            "INVALID_CREDENTIALS",
            "the provided credentials were not correct",
            Some("The provided credentials were not correct. Please try again."),
        );
    }
    let token = issue_public_token(&mut st, ci, webhook, Utc::now());
    sb.persist_logged(&st).await;
    Json(json!({"public_token": token, "request_id": request_id()})).into_response()
}

#[cfg(test)]
mod tests;
