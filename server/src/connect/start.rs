//! `POST /connect/{rail}/start`: a flow is recorded (bound to this user and
//! browser session, its secret sealed) and the person is sent to the
//! provider's consent page or Plaid's Hosted Link.

use super::error::{ConnectError, Doing};
use super::guard::{
    admin, own_client, parse_rail, public_base, random_token, redirect_uri, session_binding,
    sha256_hex, FLOW_TTL, SESSION_PLAID_FLOW,
};
use crate::oauth::tokens;
use crate::rails::SecretString;
use crate::router_state::ServerState;
use app::model::{ClientId, Rail};
use app::ssr::auth::CurrentUser;
use app::ssr::store::commit;
use app::ssr::store::connect_flows::{self, NewFlow};
use app::ssr::store::connections;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

#[derive(Debug, Deserialize)]
pub struct StartForm {
    /// Empty: "add a client from QuickBooks".
    #[serde(default)]
    client_id: String,
}

pub async fn start(
    State(st): State<ServerState>,
    session: Session,
    Path(rail): Path<String>,
    Form(form): Form<StartForm>,
) -> Result<Response, ConnectError> {
    let user = admin(&st, &session).await?;
    let rail = parse_rail(&rail)?;
    let client = match form.client_id.trim() {
        "" if rail == Rail::Qbo => None,
        "" => {
            return Err(ConnectError::refused(
                "no_client",
                "Choose the client to connect.",
            ))
        }
        id => Some(own_client(&st, &user, id).await?),
    };
    let purpose = purpose(&st, rail, client.as_ref()).await?;
    let binding = session_binding(&session).await?;
    let state = random_token();
    let flow_id = sha256_hex(&state);
    let now = st.services.clock.now();
    let (url, secret) = if rail == Rail::Plaid {
        let link = plaid_link(&st, &user, purpose, client.as_ref()).await?;
        session
            .insert(SESSION_PLAID_FLOW, &state)
            .await
            .doing("writing the session")?;
        (link.0, Some(link.1))
    } else {
        let provider = st
            .services
            .providers
            .as_ref()
            .and_then(|p| p.get(rail))
            .filter(|p| !p.client_id.is_empty())
            .ok_or(ConnectError::NotConfigured(rail))?;
        let ar =
            tokens::authorize_redirect(provider, &redirect_uri(&public_base(&st), rail), &state)
                .doing("making the authorize URL")?;
        (ar.url, ar.pkce_verifier)
    };
    let sealed = secret.map(|s| st.services.sealer.seal(s.expose(), &flow_id));
    let mut tx = super::guard::begin(&st).await?;
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
    .doing("storing the flow")?;
    commit(tx).await.doing("storing the flow")?;
    Ok(Redirect::to(&url).into_response())
}

/// What the flow is for: a new client from QBO, a first connection, a
/// reconnect, or Plaid's update mode for a login the bank asks for again.
async fn purpose(
    st: &ServerState,
    rail: Rail,
    client: Option<&ClientId>,
) -> Result<&'static str, ConnectError> {
    let Some(c) = client else {
        return Ok("add_client");
    };
    let mut conn = super::guard::conn(st).await?;
    let existing = connections::sealed_credentials(&mut conn, c.as_str(), rail)
        .await
        .doing("reading the connection")?;
    Ok(match existing {
        Some(e) if rail == Rail::Plaid && e.status == "needs_reconnect" => "update",
        Some(_) => "reconnect",
        None => "connect",
    })
}

/// A Hosted Link session: its URL and its link token (kept sealed with the
/// flow to ask Plaid, on return, how it ended).
async fn plaid_link(
    st: &ServerState,
    user: &CurrentUser,
    purpose: &str,
    client: Option<&ClientId>,
) -> Result<(String, SecretString), ConnectError> {
    let access = match (purpose, client) {
        ("update", Some(c)) => Some(
            crate::connections::rail_auth(&st.services, c.as_str(), Rail::Plaid)
                .await
                .map_err(|e| ConnectError::refused("unreadable_grant", e.to_string()))?
                .access_token,
        ),
        _ => None,
    };
    let public = public_base(st);
    let link = st
        .services
        .onboarding
        .plaid
        .link_token_create(
            user.user_id.as_str(),
            &redirect_uri(&public, Rail::Plaid),
            // The new Item announces login trouble and new transactions.
            Some(&format!("{public}/webhooks/plaid")),
            access.as_ref(),
        )
        .await
        .map_err(|e| {
            ConnectError::provider(
                "Plaid did not answer",
                "Plaid could not start Link just now; nothing was changed. Try again shortly.",
                e,
            )
        })?;
    Ok((link.hosted_link_url, link.link_token))
}
