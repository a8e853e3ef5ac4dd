//! The Plaid simulator: every endpoint is POST JSON; credentials in the body
//! or in `PLAID-CLIENT-ID`/`PLAID-SECRET`; `request_id` in every response.

use crate::sim_state::*;
use crate::wire::decimal_number as num;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::MutexGuard;

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/accounts/get", post(accounts_get))
        .route("/accounts/balance/get", post(balance_get))
        .route("/transactions/sync", post(transactions_sync))
        .route("/transactions/refresh", post(transactions_refresh))
        .route("/item/get", post(item_get))
        .route("/sandbox/item/reset_login", post(reset_login))
        .merge(crate::plaid_link::api_routes())
        .merge(crate::plaid_webhooks::api_routes())
}

pub(crate) fn request_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    id[..15].to_owned()
}

/// A `PlaidError` object (as in a webhook's `error`: no `request_id`).
pub(crate) fn error_object(
    status: StatusCode,
    error_type: &str,
    code: &str,
    message: &str,
    display: Option<&str>,
) -> Value {
    json!({
        "error_type": error_type, "error_code": code, "error_code_reason": null,
        "error_message": message, "display_message": display,
        "causes": [], "status": status.as_u16(),
        "documentation_url": format!("https://plaid.com/docs/errors/{}/", error_type.to_lowercase().replace('_', "-")),
        "suggested_action": null,
    })
}

pub(crate) fn perr(
    status: StatusCode,
    error_type: &str,
    code: &str,
    message: &str,
    display: Option<&str>,
) -> Response {
    let mut body = error_object(status, error_type, code, message, display);
    body["request_id"] = json!(request_id());
    (status, Json(body)).into_response()
}

/// An injected failure, as Plaid answers it: `RATE_LIMIT_EXCEEDED` for a
/// 429, `API_ERROR` / `INTERNAL_SERVER_ERROR` otherwise.
pub(crate) fn injected(status: StatusCode) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return perr(
            status,
            "RATE_LIMIT_EXCEEDED",
            "TRANSACTIONS_SYNC_LIMIT",
            "rate limit exceeded for attempts to access this item. please try again later",
            None,
        );
    }
    perr(
        status,
        "API_ERROR",
        "INTERNAL_SERVER_ERROR",
        "an unexpected error occurred",
        None,
    )
}

pub(crate) fn invalid_field(msg: &str) -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "INVALID_FIELD",
        msg,
        None,
    )
}

const LOGIN_REQUIRED_MESSAGE: &str = "the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information. use Link's update mode to restore the item to a good state";
const LOGIN_REQUIRED_DISPLAY: &str =
    "The login details of this item have changed. Please reconnect your bank.";

fn login_required() -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        LOGIN_REQUIRED_MESSAGE,
        Some(LOGIN_REQUIRED_DISPLAY),
    )
}

/// The ITEM_LOGIN_REQUIRED `PlaidError` an ITEM `ERROR` webhook carries.
pub(crate) fn login_required_error() -> Value {
    error_object(
        StatusCode::BAD_REQUEST,
        "ITEM_ERROR",
        "ITEM_LOGIN_REQUIRED",
        LOGIN_REQUIRED_MESSAGE,
        Some(LOGIN_REQUIRED_DISPLAY),
    )
}

pub(crate) enum Need {
    /// A product call: refuse when the item needs a login.
    Product,
    /// Item management: answer even when the item needs a login.
    Item,
}

/// Parse the body and check the client credentials (body or headers); hand
/// back the locked state and the parsed body.
pub(crate) async fn client_authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(MutexGuard<'a, SimState>, Value), Response> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Err(perr(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "INVALID_BODY",
            "body could not be parsed as JSON",
            None,
        ));
    };
    let pick = |field: &str, header: &str| {
        v.get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                headers
                    .get(header)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
    };
    let cfg = &sb.inner.config;
    let ok = pick("client_id", "plaid-client-id").as_deref() == Some(cfg.plaid_client_id.as_str())
        && pick("secret", "plaid-secret").as_deref() == Some(cfg.plaid_secret.expose());
    if !ok {
        return Err(perr(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_API_KEYS",
            "invalid client_id or secret provided",
            None,
        ));
    }
    Ok((sb.inner.state.lock().await, v))
}

/// What an access token stands for.
pub(crate) enum TokenLookup {
    /// A live token of the item of this client (index).
    Live(usize),
    /// A token of an item deleted with `/item/remove`.
    Removed,
    Unknown,
}

/// Any live access token of an item: the world's seeded one or one issued by
/// an exchange.
pub(crate) fn find_access_token(st: &SimState, token: &str) -> TokenLookup {
    if token.is_empty() {
        return TokenLookup::Unknown;
    }
    let item_id = if let Some(c) = st.clients.iter().find(|c| c.plaid.access_token == token) {
        c.plaid.item_id.as_str()
    } else if let Some(r) = st
        .plaid_link
        .access_tokens
        .iter()
        .find(|r| r.access_token == token)
    {
        r.item_id.as_str()
    } else {
        return TokenLookup::Unknown;
    };
    if st.plaid_link.removed_items.iter().any(|i| i == item_id) {
        return TokenLookup::Removed;
    }
    match st.clients.iter().position(|c| c.plaid.item_id == item_id) {
        Some(ci) => TokenLookup::Live(ci),
        None => TokenLookup::Removed,
    }
}

pub(crate) fn invalid_access_token() -> Response {
    perr(StatusCode::BAD_REQUEST, "INVALID_INPUT", "INVALID_ACCESS_TOKEN", "provided access token is in an invalid format. expected format: access-<environment>-<identifier>", None)
}

pub(crate) fn item_not_found() -> Response {
    perr(
        StatusCode::BAD_REQUEST,
        "ITEM_ERROR",
        "ITEM_NOT_FOUND",
        "The Item you requested cannot be found. This Item does not exist, has been previously removed via /item/remove, or has had access removed by the user.",
        None,
    )
}

/// Check credentials and the access token; hand back the locked state, the
/// client index and the parsed body.
pub(crate) async fn authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    body: &Bytes,
    need: Need,
) -> Result<(MutexGuard<'a, SimState>, usize, Value), Response> {
    let (st, v) = client_authed(sb, headers, body).await?;
    let token = v.get("access_token").and_then(Value::as_str).unwrap_or("");
    let ci = match find_access_token(&st, token) {
        TokenLookup::Live(ci) => ci,
        TokenLookup::Removed => return Err(item_not_found()),
        TokenLookup::Unknown => return Err(invalid_access_token()),
    };
    if matches!(need, Need::Product) && needs_login(&st, ci) {
        return Err(login_required());
    }
    Ok((st, ci, v))
}

pub(crate) fn needs_login(st: &SimState, ci: usize) -> bool {
    let item = &st.clients[ci].plaid;
    item.login_required || st.faults.plaid_login_required.contains(&item.item_id)
}

/// Which balances an account shows: the live ones (`/accounts/balance/get`)
/// or those of the last refresh (everything else).
#[derive(Clone, Copy)]
enum Balances {
    Live,
    Cached,
}

fn render_account(c: &SimClient, which: Balances) -> Value {
    let a = &c.plaid.account;
    let (available, current, as_of) = match (which, &a.cached) {
        (Balances::Cached, Some(k)) => (k.available_cents, k.current_cents, Some(k.as_of)),
        _ => (a.available_cents, a.current_cents, None),
    };
    json!({
        "account_id": a.account_id, "mask": a.mask, "name": a.name, "official_name": a.official_name,
        "type": "depository", "subtype": "checking", "holder_category": "business",
        "balances": {"available": num(available), "current": num(current),
            "iso_currency_code": c.currency, "limit": null, "unofficial_currency_code": null,
            "last_updated_datetime": as_of.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))},
    })
}

/// Count a call against the Item's rate limit, or answer 429.
fn rate_limited(
    st: &mut SimState,
    ci: usize,
    limit: &crate::plaid_limits::Limit,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Response> {
    if st.faults.rate_limits_off {
        return None;
    }
    let item_id = st.clients[ci].plaid.item_id.clone();
    let code = st.plaid_calls.admit(&item_id, limit, now).err()?;
    Some(perr(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMIT_EXCEEDED",
        code,
        "rate limit exceeded for attempts to access this item. please try again later",
        None,
    ))
}

pub(crate) fn render_item(st: &SimState, ci: usize) -> Value {
    let item = &st.clients[ci].plaid;
    let webhook = st
        .plaid_link
        .item_webhooks
        .iter()
        .find(|(i, _)| *i == item.item_id)
        .map(|(_, url)| url.as_str())
        .unwrap_or("");
    let error = if needs_login(st, ci) {
        login_required_error()
    } else {
        Value::Null
    };
    json!({
        "item_id": item.item_id, "institution_id": item.institution_id, "institution_name": item.institution_name,
        "webhook": webhook, "error": error, "available_products": ["balance"], "billed_products": ["transactions"],
        "products": ["transactions"], "consent_expiration_time": null, "update_type": "background", "auth_method": null,
    })
}

/// `/accounts/get`: the balances as of the last refresh.
async fn accounts_get(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, _) = match authed(&sb, &headers, &body, Need::Product).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    if let Some(r) = rate_limited(&mut st, ci, &crate::plaid_limits::ACCOUNTS_GET, now) {
        return r;
    }
    let accounts = [render_account(&st.clients[ci], Balances::Cached)];
    Json(json!({"accounts": accounts, "item": render_item(&st, ci), "request_id": request_id()}))
        .into_response()
}

/// `/accounts/balance/get`: the live balances, which become the cached ones.
async fn balance_get(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, _) = match authed(&sb, &headers, &body, Need::Product).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    let limit = &crate::plaid_limits::ACCOUNTS_BALANCE_GET;
    if let Some(r) = rate_limited(&mut st, ci, limit, now) {
        return r;
    }
    let a = &mut st.clients[ci].plaid.account;
    let moved = a.cached.as_ref().is_none_or(|c| {
        c.available_cents != a.available_cents || c.current_cents != a.current_cents
    });
    a.cached = Some(CachedBalances {
        available_cents: a.available_cents,
        current_cents: a.current_cents,
        as_of: now,
    });
    // A read that only re-stamps the cache is not worth a save of the
    // whole world (it was a fifth of the simulation's time): the new time
    // goes with the next save, and a restart before it shows the cache a
    // little older, as a cache may be.
    if moved {
        sb.persist_logged(&st).await;
    }
    let accounts = [render_account(&st.clients[ci], Balances::Live)];
    Json(json!({"accounts": accounts, "item": render_item(&st, ci), "request_id": request_id()}))
        .into_response()
}

async fn item_get(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, _) = match authed(&sb, &headers, &body, Need::Item).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    if let Some(r) = rate_limited(&mut st, ci, &crate::plaid_limits::ITEM_GET, now) {
        return r;
    }
    Json(json!({"item": render_item(&st, ci), "status": {"transactions": null, "last_webhook": null}, "request_id": request_id()})).into_response()
}

/// `/transactions/refresh`: Plaid looks for new transactions at once; here
/// the world's are already known, so whatever the Item has not been told
/// about is announced (`SYNC_UPDATES_AVAILABLE`, to an Item that syncs).
async fn transactions_refresh(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut st, ci, _) = match authed(&sb, &headers, &body, Need::Product).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let before = st.webhooks.len();
    crate::plaid_webhooks::note_new_transactions(&mut st, ci, sb.inner.clock.now());
    if st.webhooks.len() != before {
        sb.persist_logged(&st).await;
    }
    Json(json!({"request_id": request_id()})).into_response()
}

async fn reset_login(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, _) = match authed(&sb, &headers, &body, Need::Item).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    st.clients[ci].plaid.login_required = true;
    // Plaid fires ITEM ERROR on every reset, if the Item has a webhook.
    crate::plaid_webhooks::login_broken(&mut st, ci, sb.inner.clock.now());
    sb.persist_logged(&st).await;
    Json(json!({"reset_login": true, "request_id": request_id()})).into_response()
}

/// Cursors are opaque: base64 of a position in the item's transaction log.
fn encode_cursor(pos: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("rowcol-sbx:{pos}"))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("rowcol-sbx:")?
        .parse()
        .ok()
}

/// Plaid's personal finance category of one of the world's transactions.
fn category(t: &PlaidTxnRec) -> (&'static str, &'static str) {
    let name = t.name.as_str();
    if t.amount_cents < 0 {
        ("INCOME", "INCOME_OTHER_INCOME")
    } else if name.contains("PAYROLL") {
        (
            "GENERAL_SERVICES",
            "GENERAL_SERVICES_OTHER_GENERAL_SERVICES",
        )
    } else if name.contains("RENT") {
        ("RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
    } else if t.in_store {
        ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_SUPERSTORES")
    } else {
        ("TRANSFER_OUT", "TRANSFER_OUT_ACCOUNT_TRANSFER")
    }
}

/// A `Transaction` with every field the spec requires (the nullable ones
/// null, as Plaid sends them for an institution that does not provide
/// them).
fn render_txn(c: &SimClient, t: &PlaidTxnRec) -> Value {
    let (primary, detailed) = category(t);
    json!({
        "transaction_id": t.id, "account_id": c.plaid.account.account_id, "amount": num(t.amount_cents),
        "iso_currency_code": c.currency, "unofficial_currency_code": null, "date": t.date.to_string(),
        "authorized_date": t.authorized_date.unwrap_or(t.date).to_string(),
        "authorized_datetime": null, "datetime": null,
        "name": t.name, "merchant_name": null, "original_description": null,
        "pending": t.pending, "pending_transaction_id": t.pending_transaction_id, "account_owner": null,
        "payment_channel": if t.in_store { "in store" } else { "other" },
        "transaction_type": if t.in_store { "place" } else { "special" },
        "transaction_code": null, "check_number": null,
        "location": {"address": null, "city": null, "region": null, "postal_code": null,
            "country": null, "lat": null, "lon": null, "store_number": null},
        "payment_meta": {"reference_number": null, "ppd_id": null, "payee": null, "by_order_of": null,
            "payer": null, "payment_method": null, "payment_processor": null, "reason": null},
        "category": null, "category_id": null, "logo_url": null, "website": null,
        "personal_finance_category": {"primary": primary, "detailed": detailed, "confidence_level": "LOW"},
        "counterparties": [], "merchant_entity_id": null,
    })
}

async fn transactions_sync(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let (mut st, ci, v) = match authed(&sb, &headers, &body, Need::Product).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    let limit = &crate::plaid_limits::TRANSACTIONS_SYNC;
    if let Some(r) = rate_limited(&mut st, ci, limit, now) {
        return r;
    }
    // A new Item: its initial pull has not finished.
    if st.clients[ci]
        .plaid
        .transactions_ready_at
        .is_some_and(|t| now < t)
    {
        return perr(
            StatusCode::BAD_REQUEST,
            "ITEM_ERROR",
            "PRODUCT_NOT_READY",
            "the requested product is not yet ready. please provide a webhook or try the request again later",
            None,
        );
    }
    // From now on the Item gets SYNC_UPDATES_AVAILABLE; what is in the log
    // already is this call's to fetch, not news.
    let item = &mut st.clients[ci].plaid;
    if !item.sync_started {
        item.sync_started = true;
        item.txns_announced = item.txns_announced.max(item.txns.len());
        sb.persist_logged(&st).await;
    }
    let count = match v.get("count") {
        None | Some(Value::Null) => 100,
        Some(n) => match n.as_u64() {
            Some(n) if (1..=500).contains(&n) => n as usize,
            _ => return invalid_field("count must be an integer between 1 and 500"),
        },
    };
    let log_len = st.clients[ci].plaid.txns.len();
    let pos = match v.get("cursor").and_then(Value::as_str) {
        None | Some("") => 0,
        Some("now") => log_len,
        Some(cur) => match decode_cursor(cur) {
            Some(p) if p <= log_len => p,
            _ => return invalid_field("cursor is not valid"),
        },
    };
    // Plaid: new data arriving while a caller pages through an update
    // fails the page; the caller restarts from its first cursor.
    if pos > 0 && pos < log_len && st.faults.plaid_sync_mutation_next > 0 {
        st.faults.plaid_sync_mutation_next -= 1;
        sb.persist_logged(&st).await;
        return perr(
            StatusCode::BAD_REQUEST,
            "TRANSACTIONS_ERROR",
            "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
            "Underlying transaction data changed since last page was fetched. Please restart pagination from last update.",
            None,
        );
    }
    let c = &st.clients[ci];
    let log = &c.plaid.txns;
    let end = (pos + count).min(log.len());
    // A posted transaction replacing a pending one comes with that pending
    // one in `removed`; a removal entry is only a `removed` item; a
    // modification is the new form of one listed before.
    let account_id = &c.plaid.account.account_id;
    let mut added = Vec::new();
    let mut modified = Vec::new();
    let mut removed = Vec::new();
    for t in &log[pos..end] {
        if t.removal {
            removed.push(json!({"transaction_id": t.id, "account_id": account_id}));
            continue;
        }
        if t.modification {
            modified.push(render_txn(c, t));
            continue;
        }
        if let Some(p) = &t.pending_transaction_id {
            removed.push(json!({"transaction_id": p, "account_id": account_id}));
        }
        added.push(render_txn(c, t));
    }
    let next_cursor = if log.is_empty() {
        String::new()
    } else {
        encode_cursor(end)
    };
    Json(json!({
        "added": added, "modified": modified, "removed": removed, "next_cursor": next_cursor, "has_more": end < log.len(),
        "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE", "accounts": [render_account(c, Balances::Cached)], "request_id": request_id(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests;
