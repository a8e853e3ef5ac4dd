//! The connect flows, as plain routes (they redirect to providers and back,
//! and work without JavaScript):
//!
//! * `POST /connect/{rail}/start` (admin; form `client_id`, empty for "add a
//!   client from QuickBooks") → 303 to the provider's consent page (QBO,
//!   Ramp, Stripe) or Plaid's Hosted Link.
//! * `GET /connect/{rail}/callback` → checks the `state` (known, unused,
//!   unexpired, same user and browser session), exchanges the code, names
//!   the account, stores the grant sealed → 303 to `/connections`.
//! * `POST /connect/stripe/key` (admin; `client_id`, `key`): a pasted
//!   restricted key instead of OAuth.
//! * `POST /connections/{client}/{rail}/disconnect`: revoke at the
//!   provider, then forget the tokens. `POST /connections/{client}/sync`.
//!
//! Every refusal is a page that says why, stores nothing, and is audited
//! (a state RowCol never issued is a security event: it has no firm).

use super::tokens::{self, Grant, OAuthError};
use crate::connections::rail_name;
use crate::rails::accounts::LinkResult;
use crate::rails::{RailAuth, SecretString};
use crate::state::ServerState;
use app::error::AppError;
use app::model::{ClientId, ConnectionId, FirmId, Rail, ReasonCode, Role};
use app::ssr::auth::{user_of_session, CurrentUser};
use app::ssr::jobs::Job;
use app::ssr::store::connect_flows::{self, NewFlow};
use app::ssr::store::connections::{self, ConnStatus, ConnectOutcome, NewConnection};
use app::ssr::store::{audit, clients, commit, hygiene, jobs};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tower_sessions::Session;

/// How long a person has to come back from the provider.
const FLOW_TTL: chrono::Duration = chrono::Duration::minutes(15);
const SESSION_NONCE: &str = "connect_nonce";
const SESSION_PLAID_FLOW: &str = "plaid_flow";

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// 256 random bits, hex: an OAuth `state` or a session nonce.
fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A refusal or outcome page (server-rendered, no script).
pub fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t} · RowCol</title><link rel=\"stylesheet\" href=\"/pkg/rowcol.css\"></head>\
         <body><main class=\"page connect-result\"><h1>{t}</h1><p class=\"message\" role=\"alert\">{m}</p>\
         <p><a href=\"/connections\">Back to Connections</a></p></main></body></html>",
        t = escape(title),
        m = escape(message)
    );
    (status, Html(body)).into_response()
}

fn refused(message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, "Not connected", message)
}

fn app_error_page(e: AppError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    page(status, "Not allowed", &e.to_string())
}

fn public_base(st: &ServerState) -> String {
    st.services.public_url.trim_end_matches('/').to_owned()
}

pub fn redirect_uri(public: &str, rail: Rail) -> String {
    format!(
        "{}/connect/{}/callback",
        public.trim_end_matches('/'),
        rail.as_str()
    )
}

async fn admin(st: &ServerState, session: &Session) -> Result<CurrentUser, Response> {
    let user = user_of_session(session, &st.services.db)
        .await
        .map_err(app_error_page)?;
    user.require(Role::Admin).map_err(|_| {
        page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only an admin of your firm can connect or disconnect rails.",
        )
    })?;
    Ok(user)
}

/// The client, if it is the user's firm's (else "not found", never a hint).
async fn own_client(st: &ServerState, user: &CurrentUser, id: &str) -> Result<ClientId, Response> {
    let not_found = || {
        page(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such client in your firm.",
        )
    };
    let client = ClientId::parse(id).map_err(|_| not_found())?;
    let mut conn = st.services.db.acquire().await.map_err(|_| internal())?;
    match clients::firm_of(&mut conn, client.as_str()).await {
        Ok(f) if f == user.firm_id.as_str() => Ok(client),
        _ => Err(not_found()),
    }
}

fn internal() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "RowCol could not finish this; nothing was changed. Try again shortly.",
    )
}

async fn session_binding(session: &Session) -> Result<String, Response> {
    let nonce: Option<String> = session.get(SESSION_NONCE).await.map_err(|_| internal())?;
    let nonce = match nonce {
        Some(n) => n,
        None => {
            let n = random_token();
            session
                .insert(SESSION_NONCE, &n)
                .await
                .map_err(|_| internal())?;
            n
        }
    };
    Ok(sha256_hex(&nonce))
}

fn no_such_rail() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "No such rail.")
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    client_id: String,
}

/// `POST /connect/{rail}/start`.
pub async fn start(
    State(st): State<ServerState>,
    session: Session,
    Path(rail): Path<String>,
    Form(form): Form<StartForm>,
) -> Response {
    match start_inner(&st, &session, &rail, &form).await {
        Ok(r) | Err(r) => r,
    }
}

async fn start_inner(
    st: &ServerState,
    session: &Session,
    rail: &str,
    form: &StartForm,
) -> Result<Response, Response> {
    let user = admin(st, session).await?;
    let rail = Rail::parse(rail).ok_or_else(no_such_rail)?;
    let client = match form.client_id.trim() {
        "" if rail == Rail::Qbo => None,
        "" => return Err(refused("Choose the client to connect.")),
        id => Some(own_client(st, &user, id).await?),
    };
    let purpose = match &client {
        None => "add_client",
        Some(c) => {
            let mut conn = st.services.db.acquire().await.map_err(|_| internal())?;
            match connections::sealed_credentials(&mut conn, c.as_str(), rail)
                .await
                .map_err(|_| internal())?
            {
                Some(existing) if rail == Rail::Plaid && existing.status == "needs_reconnect" => {
                    "update"
                }
                Some(_) => "reconnect",
                None => "connect",
            }
        }
    };
    let binding = session_binding(session).await?;
    let state = random_token();
    let flow_id = sha256_hex(&state);
    let now = st.services.clock.now();
    let public = public_base(st);
    let (url, secret) = if rail == Rail::Plaid {
        let access = match (purpose, &client) {
            ("update", Some(c)) => Some(
                crate::connections::rail_auth(&st.services, c.as_str(), Rail::Plaid)
                    .await
                    .map_err(|e| refused(&e.to_string()))?
                    .access_token,
            ),
            _ => None,
        };
        let link = st
            .services
            .onboarding
            .plaid
            .link_token_create(
                user.user_id.as_str(),
                &redirect_uri(&public, Rail::Plaid),
                // The new Item announces login trouble and new transactions.
                Some(&format!("{}/webhooks/plaid", public.trim_end_matches('/'))),
                access.as_ref(),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "plaid link token");
                page(
                    StatusCode::BAD_GATEWAY,
                    "Plaid did not answer",
                    "Plaid could not start Link just now; nothing was changed. Try again shortly.",
                )
            })?;
        session
            .insert(SESSION_PLAID_FLOW, &state)
            .await
            .map_err(|_| internal())?;
        (link.hosted_link_url, Some(link.link_token))
    } else {
        let provider = st
            .services
            .providers
            .as_ref()
            .and_then(|p| p.get(rail))
            .filter(|p| !p.client_id.is_empty())
            .ok_or_else(|| {
                page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not configured",
                    &format!("RowCol has no {} app configured.", rail_name(rail)),
                )
            })?;
        let ar = tokens::authorize_redirect(provider, &redirect_uri(&public, rail), &state)
            .map_err(|e| {
                tracing::error!(error = %e, "authorize URL");
                internal()
            })?;
        (ar.url, ar.pkce_verifier)
    };
    let sealed = secret.map(|s| st.services.sealer.seal(s.expose(), &flow_id));
    let mut tx = st.services.db.begin().await.map_err(|_| internal())?;
    connect_flows::create(
        &mut tx,
        &NewFlow {
            flow_id: &flow_id,
            firm_id: user.firm_id.as_str(),
            user_id: user.user_id.as_str(),
            session_binding: &binding,
            rail: rail.as_str(),
            client_id: client.as_ref().map(ClientId::as_str),
            purpose,
            secret_sealed: sealed.as_deref(),
            expires_at: now + FLOW_TTL,
        },
        now,
    )
    .await
    .map_err(|_| internal())?;
    commit(tx).await.map_err(|_| internal())?;
    Ok(Redirect::to(&url).into_response())
}

/// `GET /connect/{rail}/callback`.
pub async fn callback(
    State(st): State<ServerState>,
    session: Session,
    Path(rail): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match callback_inner(&st, &session, &rail, &q).await {
        Ok(r) | Err(r) => r,
    }
}

/// Audit a refusal in the flow's firm and answer the page.
async fn refuse_flow(
    st: &ServerState,
    firm: &str,
    rail: Rail,
    subject: &str,
    reason: &str,
    message: &str,
) -> Response {
    let at = st.services.clock.now();
    if let (Ok(firm), Ok(mut tx)) = (FirmId::parse(firm), st.services.db.begin().await) {
        let ok = audit::record(
            &mut tx,
            &firm,
            at,
            audit::Entry {
                actor: "rowcol",
                action: "connection.refused",
                subject,
                detail: serde_json::json!({ "rail": rail.as_str(), "reason": reason }),
            },
        )
        .await
        .is_ok();
        if ok {
            let _ = commit(tx).await;
        }
    }
    refused(message)
}

async fn callback_inner(
    st: &ServerState,
    session: &Session,
    rail: &str,
    q: &HashMap<String, String>,
) -> Result<Response, Response> {
    let rail = Rail::parse(rail).ok_or_else(no_such_rail)?;
    let state = if rail == Rail::Plaid {
        // Hosted Link returns to a fixed URI: the flow is the session's.
        let s: Option<String> = session
            .remove(SESSION_PLAID_FLOW)
            .await
            .map_err(|_| internal())?;
        s.unwrap_or_default()
    } else {
        q.get("state").cloned().unwrap_or_default()
    };
    let flow = {
        let mut conn = st.services.db.acquire().await.map_err(|_| internal())?;
        let flow = if state.is_empty() {
            None
        } else {
            connect_flows::find(&mut conn, &sha256_hex(&state))
                .await
                .map_err(|_| internal())?
        };
        match flow {
            Some(f) if f.rail == rail.as_str() => f,
            _ => {
                drop(conn);
                // Anyone can make a browser GET this URL (an image tag on
                // another site): counted per minute like refused webhooks,
                // never a row per request.
                let finished = st.webhook_refusals.note(
                    rail,
                    "connect_state_unknown",
                    st.services.clock.now(),
                );
                crate::webhooks::refusals::write(&st.services, finished).await;
                return Err(refused(
                    "This connection link is not valid: it was not issued by RowCol, or was altered. Nothing was connected.",
                ));
            }
        }
    };
    let subject = flow
        .client_id
        .clone()
        .unwrap_or_else(|| "new client".into());
    let refuse = |reason: &'static str, message: &'static str| {
        let (firm, subject) = (flow.firm_id.clone(), subject.clone());
        async move { refuse_flow(st, &firm, rail, &subject, reason, message).await }
    };
    if flow.used_at.is_some() {
        return Err(refuse(
            "replayed",
            "This connection link was already used. Start again from Connections.",
        )
        .await);
    }
    let now = st.services.clock.now();
    if flow.expires_at < now.timestamp_millis() {
        return Err(refuse(
            "expired",
            "This connection link expired. Start again from Connections.",
        )
        .await);
    }
    let user = match user_of_session(session, &st.services.db).await {
        Ok(u) => u,
        Err(_) => {
            return Err(refuse(
                "not_signed_in",
                "Sign in to RowCol, then start the connection again.",
            )
            .await)
        }
    };
    if user.user_id.as_str() != flow.user_id || user.firm_id.as_str() != flow.firm_id {
        return Err(refuse(
            "other_user",
            "This connection was started by someone else. Start it again from your own Connections page.",
        )
        .await);
    }
    if user.role < Role::Admin {
        return Err(refuse("not_admin", "Only an admin of your firm can connect rails.").await);
    }
    if session_binding(session).await? != flow.session_binding {
        return Err(refuse(
            "other_session",
            "This connection was started in another browser session. Start it again here.",
        )
        .await);
    }
    {
        let mut conn = st.services.db.acquire().await.map_err(|_| internal())?;
        if !connect_flows::use_once(&mut conn, &flow.flow_id, now)
            .await
            .map_err(|_| internal())?
        {
            return Err(refuse(
                "replayed",
                "This connection link was already used. Start again from Connections.",
            )
            .await);
        }
    }
    if let Some(err) = q.get("error") {
        let reason = if err == "access_denied" {
            "access_denied"
        } else {
            "provider_error"
        };
        return Err(refuse_flow(
            st,
            &flow.firm_id,
            rail,
            &subject,
            reason,
            &format!(
                "{} did not grant access ({}). Nothing was connected.",
                rail_name(rail),
                err.chars().take(60).collect::<String>()
            ),
        )
        .await);
    }
    let secret = flow
        .secret_sealed
        .as_deref()
        .map(|s| {
            st.services
                .sealer
                .open(s, &flow.flow_id)
                .map(SecretString::new)
        })
        .transpose()
        .map_err(|_| internal())?;
    let client = flow
        .client_id
        .as_deref()
        .map(ClientId::parse)
        .transpose()
        .map_err(|_| internal())?;
    if rail == Rail::Plaid {
        let link_token = secret.ok_or_else(internal)?;
        return plaid_finish(st, &user, client, &flow.purpose, &link_token, &subject).await;
    }
    let code = q.get("code").cloned().unwrap_or_default();
    if code.is_empty() {
        return Err(refuse(
            "no_code",
            "The provider sent no authorization code. Nothing was connected.",
        )
        .await);
    }
    let provider = st
        .services
        .providers
        .as_ref()
        .and_then(|p| p.get(rail))
        .ok_or_else(internal)?;
    let grant = match tokens::exchange_code(
        &st.services.oauth_http,
        provider,
        &redirect_uri(&public_base(st), rail),
        &code,
        secret.as_ref(),
    )
    .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, %rail, "code exchange failed");
            let msg = match &e {
                OAuthError::InvalidGrant { .. } => format!(
                    "{} refused the authorization (the code was used or expired). Nothing was connected.",
                    rail_name(rail)
                ),
                OAuthError::Transient { .. } => format!(
                    "{} did not answer. Nothing was connected; start again.",
                    rail_name(rail)
                ),
                _ => format!("{} refused RowCol's request ({}). Nothing was connected.", rail_name(rail), e.code()),
            };
            return Err(refuse_flow(st, &flow.firm_id, rail, &subject, e.code(), &msg).await);
        }
    };
    // What was connected, named by the provider.
    let named = match rail {
        Rail::Qbo => {
            let realm = q.get("realmId").cloned().unwrap_or_default();
            if realm.is_empty() || !realm.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(refuse(
                    "no_realm",
                    "QuickBooks sent no company id. Nothing was connected.",
                )
                .await);
            }
            let auth = RailAuth {
                external_id: realm.clone(),
                access_token: grant.access_token.clone(),
            };
            st.services
                .onboarding
                .qbo
                .company_name(&auth)
                .await
                .map(|n| (realm, n))
        }
        Rail::Ramp => {
            let auth = RailAuth {
                external_id: String::new(),
                access_token: grant.access_token.clone(),
            };
            st.services.onboarding.ramp.business(&auth).await
        }
        Rail::Stripe => st
            .services
            .onboarding
            .stripe
            .account(&grant.access_token)
            .await
            .map(|(id, name)| (grant.account_id.clone().unwrap_or(id), name)),
        Rail::Plaid => unreachable_plaid(),
    };
    let (external_id, account_name) = match named {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, %rail, "naming the connected account failed");
            return Err(refuse_flow(
                st,
                &flow.firm_id,
                rail,
                &subject,
                "account_unreadable",
                &format!(
                    "{} could not be read with the new grant. Nothing was connected.",
                    rail_name(rail)
                ),
            )
            .await);
        }
    };
    store(
        st,
        &user,
        Granted {
            client,
            rail,
            external_id: &external_id,
            account_name: &account_name,
            grant: &grant,
            method: "oauth",
            subject: &subject,
        },
    )
    .await
}

fn unreachable_plaid() -> Result<(String, String), crate::rails::RailError> {
    Err(crate::rails::RailError::Permanent(
        "plaid is linked, not authorized".into(),
    ))
}

async fn plaid_finish(
    st: &ServerState,
    user: &CurrentUser,
    client: Option<ClientId>,
    purpose: &str,
    link_token: &SecretString,
    subject: &str,
) -> Result<Response, Response> {
    let firm = user.firm_id.as_str();
    let result: LinkResult = match st
        .services
        .onboarding
        .plaid
        .link_token_get(link_token)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "link/token/get");
            return Err(page(
                StatusCode::BAD_GATEWAY,
                "Plaid did not answer",
                "Plaid could not report the Link session; nothing was connected. Try again.",
            ));
        }
    };
    if !result.finished {
        return Err(refuse_flow(
            st,
            firm,
            Rail::Plaid,
            subject,
            "link_exited",
            "The bank link was closed before it finished. Nothing was connected.",
        )
        .await);
    }
    let Some(client) = client else {
        return Err(internal());
    };
    if purpose == "update" {
        // The login is repaired at Plaid; the token and item stay. Prove it
        // with a balance read before calling it healthy.
        let repaired = crate::jobs::sync::refresh_balance(&st.services, client.as_str()).await;
        if repaired.is_err() {
            return Err(refuse_flow(
                st,
                firm,
                Rail::Plaid,
                subject,
                "still_login_required",
                "The bank still asks for its login. Try the repair again.",
            )
            .await);
        }
        let mut tx = st.services.db.begin().await.map_err(|_| internal())?;
        audit::record(
            &mut tx,
            &user.firm_id,
            st.services.clock.now(),
            audit::Entry {
                actor: user.email.as_str(),
                action: "connection.repaired",
                subject: client.as_str(),
                detail: serde_json::json!({ "rail": "plaid" }),
            },
        )
        .await
        .map_err(|_| internal())?;
        commit(tx).await.map_err(|_| internal())?;
        return Ok(Redirect::to("/connections?repaired=plaid").into_response());
    }
    let Some(public_token) = result.public_token.as_ref() else {
        return Err(refuse_flow(
            st,
            firm,
            Rail::Plaid,
            subject,
            "no_public_token",
            "Plaid returned no account. Nothing was connected.",
        )
        .await);
    };
    let (access, item_id) = match st
        .services
        .onboarding
        .plaid
        .exchange_public_token(public_token)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "public token exchange");
            return Err(refuse_flow(
                st,
                firm,
                Rail::Plaid,
                subject,
                "exchange_failed",
                "Plaid refused the link's token. Nothing was connected; start again.",
            )
            .await);
        }
    };
    let name = format!(
        "{} ••{}",
        result.institution.as_deref().unwrap_or("Bank"),
        result.account_mask.as_deref().unwrap_or("????")
    );
    let grant = Grant {
        access_token: access,
        refresh_token: None,
        access_expires_at: None,
        refresh_expires_at: None,
        account_id: None,
    };
    store(
        st,
        user,
        Granted {
            client: Some(client),
            rail: Rail::Plaid,
            external_id: &item_id,
            account_name: &name,
            grant: &grant,
            method: "link",
            subject,
        },
    )
    .await
}

/// A grant a flow obtained, ready to be stored.
struct Granted<'a> {
    /// None: a QBO company becomes a new client.
    client: Option<ClientId>,
    rail: Rail,
    external_id: &'a str,
    account_name: &'a str,
    grant: &'a Grant,
    /// `oauth`, `link` or `api_key`.
    method: &'a str,
    /// The audit subject of a refusal.
    subject: &'a str,
}

/// Store a new grant (and, from QBO without a client, the new client), in
/// one transaction with its audit entry and the first sync.
async fn store(
    st: &ServerState,
    user: &CurrentUser,
    granted: Granted<'_>,
) -> Result<Response, Response> {
    let Granted {
        client,
        rail,
        external_id,
        account_name,
        grant,
        method,
        subject,
    } = granted;
    let now = st.services.clock.now();
    let id = ConnectionId::generate();
    let sealer = &st.services.sealer;
    let token_sealed = sealer.seal(grant.access_token.expose(), id.as_str());
    let refresh_sealed = grant
        .refresh_token
        .as_ref()
        .map(|t| sealer.seal(t.expose(), id.as_str()));
    let mut tx = st.services.db.begin().await.map_err(|_| internal())?;
    let (client, created) = match client {
        Some(c) => (c, false),
        None => (
            clients::create(&mut tx, &user.firm_id, account_name, "USD", now)
                .await
                .map_err(|_| internal())?,
            true,
        ),
    };
    let outcome = connections::connect(
        &mut tx,
        &NewConnection {
            connection_id: &id,
            firm: &user.firm_id,
            client: &client,
            rail,
            external_id,
            account_name: Some(account_name),
            token_sealed: &token_sealed,
            refresh_sealed: refresh_sealed.as_deref(),
            access_expires_at: grant.access_expires_at,
            refresh_expires_at: grant.refresh_expires_at,
            method,
            connected_by: user.user_id.as_str(),
        },
        now,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "storing a connection");
        internal()
    })?;
    match outcome {
        ConnectOutcome::Connected => {}
        ConnectOutcome::AccountTaken { client_name } => {
            drop(tx);
            return Err(refuse_flow(
                st,
                user.firm_id.as_str(),
                rail,
                subject,
                "account_taken",
                &format!(
                    "{account_name} is already connected to {client_name} in your firm. Nothing was connected."
                ),
            )
            .await);
        }
        ConnectOutcome::OtherAccount { .. } => {
            drop(tx);
            return Err(refuse_flow(
                st,
                user.firm_id.as_str(),
                rail,
                subject,
                "other_account",
                &format!(
                    "This client is connected to another {} account; reconnect must authorize the same one. Nothing was changed.",
                    rail_name(rail)
                ),
            )
            .await);
        }
    }
    if created {
        audit::record(
            &mut tx,
            &user.firm_id,
            now,
            audit::Entry {
                actor: user.email.as_str(),
                action: "client.created",
                subject: client.as_str(),
                detail: serde_json::json!({ "name": account_name, "from": "qbo" }),
            },
        )
        .await
        .map_err(|_| internal())?;
    }
    audit::record(
        &mut tx,
        &user.firm_id,
        now,
        audit::Entry {
            actor: user.email.as_str(),
            action: "connection.connected",
            subject: client.as_str(),
            detail: serde_json::json!({
                "rail": rail.as_str(), "account": external_id, "account_name": account_name,
                "method": method,
            }),
        },
    )
    .await
    .map_err(|_| internal())?;
    if connections::unhealthy_rails(&mut tx, client.as_str())
        .await
        .map_err(|_| internal())?
        .is_empty()
    {
        hygiene::resolve_for_client(&mut tx, client.as_str(), ReasonCode::RailReauthNeeded, now)
            .await
            .map_err(|_| internal())?;
    }
    jobs::enqueue(
        &mut tx,
        &Job::SyncClient {
            client_id: client.to_string(),
        },
        now,
        now,
    )
    .await
    .map_err(|_| internal())?;
    if rail == Rail::Ramp {
        // Its own webhook subscription, made in the background.
        jobs::enqueue(
            &mut tx,
            &Job::SubscribeRampWebhooks {
                client_id: client.to_string(),
            },
            now,
            now,
        )
        .await
        .map_err(|_| internal())?;
    }
    commit(tx).await.map_err(|_| internal())?;
    st.services.runner_wake.notify_one();
    Ok(Redirect::to(&format!("/connections?connected={}", rail.as_str())).into_response())
}

#[derive(Debug, Deserialize)]
pub struct KeyForm {
    client_id: String,
    key: String,
}

/// `POST /connect/stripe/key`: a restricted key pasted by the admin.
pub async fn stripe_key(
    State(st): State<ServerState>,
    session: Session,
    Form(form): Form<KeyForm>,
) -> Response {
    let run = async {
        let user = admin(&st, &session).await?;
        let client = own_client(&st, &user, &form.client_id).await?;
        let key = form.key.trim();
        if !(key.starts_with("rk_live_") || key.starts_with("rk_test_")) || key.len() > 255 {
            return Err(refused(
                "Paste a Stripe restricted key (it starts with rk_live_ or rk_test_). Nothing was connected.",
            ));
        }
        let key = SecretString::new(key);
        let (account, name) = st
            .services
            .onboarding
            .stripe
            .account(&key)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "stripe key check");
                refused("Stripe did not accept this key. Nothing was connected.")
            })?;
        let grant = Grant {
            access_token: key,
            refresh_token: None,
            access_expires_at: None,
            refresh_expires_at: None,
            account_id: Some(account.clone()),
        };
        store(
            &st,
            &user,
            Granted {
                client: Some(client.clone()),
                rail: Rail::Stripe,
                external_id: &account,
                account_name: &name,
                grant: &grant,
                method: "api_key",
                subject: client.as_str(),
            },
        )
        .await
    };
    match run.await {
        Ok(r) | Err(r) => r,
    }
}

/// `POST /connections/{client}/{rail}/disconnect`.
pub async fn disconnect(
    State(st): State<ServerState>,
    session: Session,
    Path((client_id, rail)): Path<(String, String)>,
) -> Response {
    let run = async {
        let user = admin(&st, &session).await?;
        let client = own_client(&st, &user, &client_id).await?;
        let rail = Rail::parse(&rail).ok_or_else(no_such_rail)?;
        let creds = {
            let mut conn = st.services.db.acquire().await.map_err(|_| internal())?;
            connections::sealed_credentials(&mut conn, client.as_str(), rail)
                .await
                .map_err(|_| internal())?
        }
        .filter(|c| c.status != "disconnected")
        .ok_or_else(|| refused("This rail is not connected."))?;
        if rail == Rail::Ramp {
            if let Some(sub) = creds.webhook_subscription_id.clone() {
                let ramp = &st.services.onboarding.ramp;
                let gone =
                    crate::connections::with_auth(&st.services, client.as_str(), rail, |auth| {
                        let sub = sub.clone();
                        async move { ramp.delete_webhook(&auth, &sub).await }
                    })
                    .await;
                if let Err(e) = gone {
                    // The grant's revocation below stops deliveries anyway.
                    tracing::warn!(error = %e, "deleting the Ramp webhook subscription failed");
                }
            }
        }
        revoke_at_provider(&st, rail, &creds).await?;
        let now = st.services.clock.now();
        let mut tx = st.services.db.begin().await.map_err(|_| internal())?;
        let moved = connections::set_status(
            &mut tx,
            &creds.connection_id,
            &[ConnStatus::Active, ConnStatus::NeedsReconnect],
            ConnStatus::Disconnected,
            Some("disconnected by an admin"),
            now,
        )
        .await
        .map_err(|_| internal())?;
        if moved {
            audit::record(
                &mut tx,
                &user.firm_id,
                now,
                audit::Entry {
                    actor: user.email.as_str(),
                    action: "connection.disconnected",
                    subject: client.as_str(),
                    detail: serde_json::json!({ "rail": rail.as_str(), "account": creds.external_id }),
                },
            )
            .await
            .map_err(|_| internal())?;
        }
        commit(tx).await.map_err(|_| internal())?;
        if rail == Rail::Ramp {
            // Its webhook secret is forgotten: stop accepting it now.
            let svc = &st.services;
            svc.ramp_secrets.reload_logged(&svc.db, &svc.sealer).await;
        }
        Ok(Redirect::to(&format!("/connections?disconnected={}", rail.as_str())).into_response())
    };
    match run.await {
        Ok(r) | Err(r) => r,
    }
}

/// Revoke the grant at the provider before RowCol forgets it. A grant the
/// provider no longer knows counts as revoked; an unreachable provider
/// leaves everything as it was.
async fn revoke_at_provider(
    st: &ServerState,
    rail: Rail,
    creds: &connections::SealedCredentials,
) -> Result<(), Response> {
    let open = |s: &Option<String>| {
        s.as_deref()
            .and_then(|v| st.services.sealer.open(v, &creds.connection_id).ok())
            .map(SecretString::new)
    };
    let unreachable = || {
        page(
            StatusCode::BAD_GATEWAY,
            "Not disconnected",
            &format!(
                "{} could not be reached to revoke RowCol's access; nothing was changed. Try again.",
                rail_name(rail)
            ),
        )
    };
    if rail == Rail::Plaid {
        if let Some(t) = open(&creds.token_sealed) {
            st.services
                .onboarding
                .plaid
                .item_remove(&t)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "plaid item/remove");
                    unreachable()
                })?;
        }
        return Ok(());
    }
    let Some(provider) = st.services.providers.as_ref().and_then(|p| p.get(rail)) else {
        return Ok(());
    };
    // A pasted Stripe key is the customer's to delete; nothing to revoke.
    let token = open(&creds.refresh_sealed).or_else(|| open(&creds.token_sealed));
    let Some(token) = token.filter(|t| !t.expose().starts_with("rk_")) else {
        return Ok(());
    };
    match tokens::revoke(
        &st.services.oauth_http,
        provider,
        &token,
        &creds.external_id,
    )
    .await
    {
        Ok(()) | Err(OAuthError::InvalidGrant { .. }) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, %rail, "revoke failed");
            Err(unreachable())
        }
    }
}

/// `POST /connections/{client}/sync`: read the client's rails now.
pub async fn sync_now(
    State(st): State<ServerState>,
    session: Session,
    Path(client_id): Path<String>,
) -> Response {
    let run = async {
        let user = admin(&st, &session).await?;
        let client = own_client(&st, &user, &client_id).await?;
        let now = st.services.clock.now();
        let mut tx = st.services.db.begin().await.map_err(|_| internal())?;
        jobs::enqueue(
            &mut tx,
            &Job::SyncClient {
                client_id: client.to_string(),
            },
            now,
            now,
        )
        .await
        .map_err(|_| internal())?;
        commit(tx).await.map_err(|_| internal())?;
        st.services.runner_wake.notify_one();
        Ok::<_, Response>(Redirect::to("/connections?synced=1").into_response())
    };
    match run.await {
        Ok(r) | Err(r) => r,
    }
}
