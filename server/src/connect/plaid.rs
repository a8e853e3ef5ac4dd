//! Plaid Link's return: ask Plaid how the Link session ended, then either
//! prove a repaired login (update mode) or exchange the public token for
//! the Item's access token.

use super::error::{ConnectError, Doing};
use super::guard::refuse_flow;
use super::store::{store, Granted};
use crate::oauth::tokens::Grant;
use crate::rails::SecretString;
use crate::router_state::ServerState;
use app::model::{ClientId, Rail};
use app::ssr::auth::CurrentUser;
use app::ssr::store::{audit, commit};
use axum::response::{IntoResponse, Redirect, Response};

pub async fn plaid_finish(
    st: &ServerState,
    user: &CurrentUser,
    client: Option<ClientId>,
    purpose: &str,
    link_token: &SecretString,
    subject: &str,
) -> Result<Response, ConnectError> {
    let firm = user.firm_id.as_str();
    let refuse = |reason: &'static str, message: &'static str| {
        refuse_flow(st, firm, Rail::Plaid, subject, reason, message)
    };
    let onboarding = &st.services.onboarding.plaid;
    let result = onboarding.link_token_get(link_token).await.map_err(|e| {
        ConnectError::provider(
            "Plaid did not answer",
            "Plaid could not report the Link session; nothing was connected. Try again.",
            e,
        )
    })?;
    if !result.finished {
        let message = "The bank link was closed before it finished. Nothing was connected.";
        return Err(refuse("link_exited", message).await);
    }
    let client = client.ok_or(ConnectError::internal(
        "finishing Plaid Link",
        "the flow has no client",
    ))?;
    if purpose == "update" {
        return repaired(st, user, &client, subject).await;
    }
    let Some(public_token) = result.public_token.as_ref() else {
        let message = "Plaid returned no account. Nothing was connected.";
        return Err(refuse("no_public_token", message).await);
    };
    let (access, item_id) = match onboarding.exchange_public_token(public_token).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "public token exchange");
            let message = "Plaid refused the link's token. Nothing was connected; start again.";
            return Err(refuse("exchange_failed", message).await);
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

/// Update mode: the login is repaired at Plaid; the token and Item stay.
/// A balance read proves it before the connection is called healthy.
async fn repaired(
    st: &ServerState,
    user: &CurrentUser,
    client: &ClientId,
    subject: &str,
) -> Result<Response, ConnectError> {
    let proof = crate::jobs::sync::refresh_balance(&st.services, client.as_str()).await;
    if proof.is_err() {
        return Err(refuse_flow(
            st,
            user.firm_id.as_str(),
            Rail::Plaid,
            subject,
            "still_login_required",
            "The bank still asks for its login. Try the repair again.",
        )
        .await);
    }
    let mut tx = super::guard::begin(st).await?;
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
    .doing("auditing the repair")?;
    commit(tx).await.doing("auditing the repair")?;
    Ok(Redirect::to("/connections?repaired=plaid").into_response())
}
