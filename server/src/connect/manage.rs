//! An admin's other connection actions: a pasted Stripe restricted key,
//! disconnecting a rail (revoked at the provider first), and "sync now".

use super::error::{ConnectError, Doing};
use super::guard::{admin, own_client, parse_rail};
use super::store::{store, Granted};
use crate::connections::rail_name;
use crate::oauth::tokens::{self, Grant, OAuthError};
use crate::rails::SecretString;
use crate::router_state::ServerState;
use app::model::Rail;
use app::ssr::job_kinds::Job;
use app::ssr::store::connections::{self, ConnStatus};
use app::ssr::store::{audit, commit, job_queue};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tower_sessions::Session;

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
) -> Result<Response, ConnectError> {
    let user = admin(&st, &session).await?;
    let client = own_client(&st, &user, &form.client_id).await?;
    let key = form.key.trim();
    if !(key.starts_with("rk_live_") || key.starts_with("rk_test_")) || key.len() > 255 {
        return Err(ConnectError::refused(
            "not_a_restricted_key",
            "Paste a Stripe restricted key (it starts with rk_live_ or rk_test_). Nothing was connected.",
        ));
    }
    let key = SecretString::new(key);
    let (account, name) = match st.services.onboarding.stripe.account(&key).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "stripe key check");
            return Err(ConnectError::refused(
                "key_refused",
                "Stripe did not accept this key. Nothing was connected.",
            ));
        }
    };
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
}

/// `POST /connections/{client}/{rail}/disconnect`.
pub async fn disconnect(
    State(st): State<ServerState>,
    session: Session,
    Path((client_id, rail)): Path<(String, String)>,
) -> Result<Response, ConnectError> {
    let user = admin(&st, &session).await?;
    let client = own_client(&st, &user, &client_id).await?;
    let rail = parse_rail(&rail)?;
    let creds = {
        let mut conn = super::guard::conn(&st).await?;
        connections::sealed_credentials(&mut conn, client.as_str(), rail)
            .await
            .doing("reading the connection")?
    }
    .filter(|c| c.status != "disconnected")
    .ok_or(ConnectError::refused(
        "not_connected",
        "This rail is not connected.",
    ))?;
    if rail == Rail::Ramp {
        if let Some(sub) = creds.webhook_subscription_id.clone() {
            let ramp = &st.services.onboarding.ramp;
            let gone = crate::connections::with_auth(&st.services, client.as_str(), rail, |auth| {
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
    let mut tx = super::guard::begin(&st).await?;
    let moved = connections::set_status(
        &mut tx,
        &creds.connection_id,
        &[ConnStatus::Active, ConnStatus::NeedsReconnect],
        ConnStatus::Disconnected,
        Some("disconnected by an admin"),
        now,
    )
    .await
    .doing("disconnecting")?;
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
        .doing("auditing the disconnect")?;
    }
    commit(tx).await.doing("disconnecting")?;
    if rail == Rail::Ramp {
        // Its webhook secret is forgotten: stop accepting it now.
        let svc = &st.services;
        svc.ramp_secrets.reload_logged(&svc.db, &svc.sealer).await;
    }
    Ok(Redirect::to(&format!("/connections?disconnected={}", rail.as_str())).into_response())
}

/// Revoke the grant at the provider before RowCol forgets it. A grant the
/// provider no longer knows counts as revoked; an unreachable provider
/// leaves everything as it was.
async fn revoke_at_provider(
    st: &ServerState,
    rail: Rail,
    creds: &connections::SealedCredentials,
) -> Result<(), ConnectError> {
    let open = |s: &Option<String>| {
        s.as_deref()
            .and_then(|v| st.services.sealer.open(v, &creds.connection_id).ok())
            .map(SecretString::new)
    };
    let unreachable = |cause: String| {
        ConnectError::provider(
            "Not disconnected",
            format!(
                "{} could not be reached to revoke RowCol's access; nothing was changed. Try again.",
                rail_name(rail)
            ),
            cause,
        )
    };
    if rail == Rail::Plaid {
        if let Some(t) = open(&creds.token_sealed) {
            let onboarding = &st.services.onboarding.plaid;
            onboarding
                .item_remove(&t)
                .await
                .map_err(|e| unreachable(format!("plaid item/remove: {e}")))?;
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
    let http = &st.services.oauth_http;
    match tokens::revoke(http, provider, &token, &creds.external_id).await {
        Ok(()) | Err(OAuthError::InvalidGrant { .. }) => Ok(()),
        Err(e) => Err(unreachable(format!("{rail} revoke: {e}"))),
    }
}

/// Where a refresh was asked from, to go back to (`?back=client`).
#[derive(Debug, serde::Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    back: String,
}

/// `POST /connections/{client}/sync`: read the client's rails now (an
/// advisor's *refresh*, an admin's *sync now*). A sync already queued for
/// later is brought forward rather than doubled. Back to the client's page
/// when asked from there, else to the client's row of Connections.
pub async fn sync_now(
    State(st): State<ServerState>,
    session: Session,
    Path(client_id): Path<String>,
    axum::extract::Query(form): axum::extract::Query<SyncForm>,
) -> Result<Response, ConnectError> {
    let user = super::guard::advisor(&st, &session).await?;
    let client = own_client(&st, &user, &client_id).await?;
    let now = st.services.clock.now();
    let mut tx = super::guard::begin(&st).await?;
    let job = Job::SyncClient {
        client_id: client.to_string(),
    };
    job_queue::run_now(&mut tx, &job, now)
        .await
        .doing("enqueueing the sync")?;
    commit(tx).await.doing("enqueueing the sync")?;
    st.services.runner_wake.notify_one();
    Ok(Redirect::to(&if form.back == "client" {
        format!("/clients/{client}?synced=1")
    } else {
        format!("/connections?synced=1#client-{client}")
    })
    .into_response())
}
