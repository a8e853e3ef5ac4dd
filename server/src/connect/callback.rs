//! `GET /connect/{rail}/callback`: the person is back from the provider.
//! The `state` must name a flow RowCol issued, unused and unexpired, for
//! the same admin in the same browser session; then the code is exchanged,
//! the account named by the provider, and the grant stored.

use super::error::{ConnectError, Doing};
use super::give_back::give_back;
use super::guard::{
    public_base, redirect_uri, refuse_flow, session_binding, sha256_hex, SESSION_PLAID_FLOW,
};
use super::plaid::plaid_finish;
use super::store::{store, Granted};
use crate::connections::rail_name;
use crate::oauth::tokens::{self, Grant, OAuthError};
use crate::rails::{RailAuth, RailError, SecretString};
use crate::router_state::ServerState;
use app::model::{ClientId, Rail, Role};
use app::ssr::auth::{user_of_session, CurrentUser};
use app::ssr::store::connect_flows::{self, Flow};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use std::collections::HashMap;
use tower_sessions::Session;

pub async fn callback(
    State(st): State<ServerState>,
    session: Session,
    Path(rail): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ConnectError> {
    let rail = super::guard::parse_rail(&rail)?;
    let flow = issued_flow(&st, &session, rail, &q).await?;
    let subject = flow
        .client_id
        .clone()
        .unwrap_or_else(|| "new client".into());
    let refuse = |reason: &'static str, message: String| {
        refuse_flow(&st, &flow.firm_id, rail, &subject, reason, message)
    };
    let user = match checked_user(&st, &session, &flow).await? {
        Ok(user) => user,
        Err((reason, message)) => return Err(refuse(reason, message.into()).await),
    };
    if let Some(err) = q.get("error") {
        let reason = if err == "access_denied" {
            "access_denied"
        } else {
            "provider_error"
        };
        let shown: String = err.chars().take(60).collect();
        let message = format!(
            "{} did not grant access ({shown}). Nothing was connected.",
            rail_name(rail)
        );
        return Err(refuse(reason, message).await);
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
        .doing("opening the flow's sealed secret")?;
    let client = flow
        .client_id
        .as_deref()
        .map(ClientId::parse)
        .transpose()
        .doing("reading the flow's client")?;
    if rail == Rail::Plaid {
        let link_token = secret.ok_or(ConnectError::internal(
            "finishing Plaid Link",
            "the flow has no link token",
        ))?;
        return plaid_finish(&st, &user, client, &flow.purpose, &link_token, &subject).await;
    }
    let code = q.get("code").cloned().unwrap_or_default();
    if code.is_empty() {
        let message = "The provider sent no authorization code. Nothing was connected.";
        return Err(refuse("no_code", message.into()).await);
    }
    let grant = match exchange(&st, rail, &code, secret.as_ref()).await? {
        Ok(g) => g,
        Err((reason, message)) => return Err(refuse(reason, message).await),
    };
    let realm = q.get("realmId").cloned().unwrap_or_default();
    // From here on the provider has issued a grant: a refusal gives it back.
    let account_hint = grant.account_id.clone().unwrap_or_else(|| realm.clone());
    if rail == Rail::Qbo && (realm.is_empty() || !realm.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        give_back(&st, rail, &grant, &account_hint).await;
        let message = "QuickBooks sent no company id. Nothing was connected.";
        return Err(refuse("no_realm", message.into()).await);
    }
    let (external_id, account_name) = match name_account(&st, rail, &grant, realm).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, %rail, "naming the connected account failed");
            give_back(&st, rail, &grant, &account_hint).await;
            let message = format!(
                "{} could not be read with the new grant. Nothing was connected.",
                rail_name(rail)
            );
            return Err(refuse("account_unreadable", message).await);
        }
    };
    store(
        &st,
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

/// The flow this callback's `state` names, if RowCol issued it for this
/// rail. Anything else is counted, never stored row by row: anyone can make
/// a browser GET this URL (an image tag on another site).
async fn issued_flow(
    st: &ServerState,
    session: &Session,
    rail: Rail,
    q: &HashMap<String, String>,
) -> Result<Flow, ConnectError> {
    let state = if rail == Rail::Plaid {
        let s: Option<String> = session
            .remove(SESSION_PLAID_FLOW)
            .await
            .doing("reading the session")?;
        s.unwrap_or_default()
    } else {
        q.get("state").cloned().unwrap_or_default()
    };
    let flow = if state.is_empty() {
        None
    } else {
        let mut conn = super::guard::conn(st).await?;
        connect_flows::find(&mut conn, &sha256_hex(&state))
            .await
            .doing("reading the flow")?
    };
    match flow {
        Some(f) if f.rail == rail.as_str() => Ok(f),
        _ => {
            let finished =
                st.webhook_refusals
                    .note(rail, "connect_state_unknown", st.services.clock.now());
            crate::webhooks::refusals::write(&st.services, finished).await;
            Err(ConnectError::refused(
                "state_unknown",
                "This connection link is not valid: it was not issued by RowCol, or was altered. Nothing was connected.",
            ))
        }
    }
}

/// The flow's admin, signed in, in the session that started it, the flow
/// unused and unexpired (and now used). `Ok(Err(..))` is a refusal to audit.
async fn checked_user(
    st: &ServerState,
    session: &Session,
    flow: &Flow,
) -> Result<Result<CurrentUser, (&'static str, &'static str)>, ConnectError> {
    const REPLAYED: (&str, &str) = (
        "replayed",
        "This connection link was already used. Start again from Connections.",
    );
    if flow.used_at.is_some() {
        return Ok(Err(REPLAYED));
    }
    let now = st.services.clock.now();
    if flow.expires_at < now.timestamp_millis() {
        return Ok(Err((
            "expired",
            "This connection link expired. Start again from Connections.",
        )));
    }
    let Ok(user) = user_of_session(session, &st.services.db).await else {
        return Ok(Err((
            "not_signed_in",
            "Sign in to RowCol, then start the connection again.",
        )));
    };
    if user.user_id.as_str() != flow.user_id || user.firm_id.as_str() != flow.firm_id {
        return Ok(Err((
            "other_user",
            "This connection was started by someone else. Start it again from your own Connections page.",
        )));
    }
    if user.role < Role::Admin {
        return Ok(Err((
            "not_admin",
            "Only an admin of your firm can connect rails.",
        )));
    }
    if session_binding(session).await? != flow.session_binding {
        return Ok(Err((
            "other_session",
            "This connection was started in another browser session. Start it again here.",
        )));
    }
    let mut conn = super::guard::conn(st).await?;
    let first_use = connect_flows::use_once(&mut conn, &flow.flow_id, now)
        .await
        .doing("marking the flow used")?;
    Ok(if first_use { Ok(user) } else { Err(REPLAYED) })
}

/// The code exchanged for a grant. `Ok(Err(..))` is a refusal to audit.
async fn exchange(
    st: &ServerState,
    rail: Rail,
    code: &str,
    pkce_verifier: Option<&SecretString>,
) -> Result<Result<Grant, (&'static str, String)>, ConnectError> {
    let provider = st
        .services
        .providers
        .as_ref()
        .and_then(|p| p.get(rail))
        .ok_or_else(|| ConnectError::internal("exchanging the code", "no provider app"))?;
    let redirect = redirect_uri(&public_base(st), rail);
    match tokens::exchange_code(
        &st.services.oauth_http,
        provider,
        &redirect,
        code,
        pkce_verifier,
    )
    .await
    {
        Ok(g) => Ok(Ok(g)),
        Err(e) => {
            tracing::warn!(error = %e, %rail, "code exchange failed");
            let name = rail_name(rail);
            let message = match &e {
                OAuthError::InvalidGrant { .. } => format!(
                    "{name} refused the authorization (the code was used or expired). Nothing was connected."
                ),
                OAuthError::Transient { .. } => {
                    format!("{name} did not answer. Nothing was connected; start again.")
                }
                _ => format!(
                    "{name} refused RowCol's request ({}). Nothing was connected.",
                    e.code()
                ),
            };
            Ok(Err((e.code(), message)))
        }
    }
}

/// What was connected, named by the provider: (its id, its name).
async fn name_account(
    st: &ServerState,
    rail: Rail,
    grant: &Grant,
    realm: String,
) -> Result<(String, String), RailError> {
    let onboarding = &st.services.onboarding;
    let auth = |external_id: String| RailAuth {
        external_id,
        access_token: grant.access_token.clone(),
    };
    match rail {
        Rail::Qbo => onboarding
            .qbo
            .company_name(&auth(realm.clone()))
            .await
            .map(|n| (realm, n)),
        Rail::Ramp => onboarding.ramp.business(&auth(String::new())).await,
        Rail::Stripe => onboarding
            .stripe
            .account(&grant.access_token)
            .await
            .map(|(id, name)| (grant.account_id.clone().unwrap_or(id), name)),
        Rail::Plaid => Err(RailError::Permanent(
            "plaid is linked, not authorized".into(),
        )),
    }
}
