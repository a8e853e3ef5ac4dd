//! Storing a grant a flow obtained: the connection (tokens sealed), the new
//! client when QBO adds one, the audit entries, the tray's reconnect item
//! resolved, and the first sync, all in one transaction.

use super::error::{ConnectError, Doing};
use super::give_back::{give_back, should_give_back, Refusal};
use super::guard::refuse_flow;
use crate::connections::rail_name;
use crate::oauth::tokens::Grant;
use crate::router_state::ServerState;
use app::model::{ClientId, ConnectionId, Rail, ReasonCode};
use app::ssr::auth::CurrentUser;
use app::ssr::job_kinds::Job;
use app::ssr::store::connections::{self, ConnectOutcome, NewConnection};
use app::ssr::store::{audit, clients, commit, hygiene, job_queue};
use axum::response::{IntoResponse, Redirect, Response};

/// A grant a flow obtained, ready to be stored.
pub struct Granted<'a> {
    /// None: a QBO company becomes a new client.
    pub client: Option<ClientId>,
    pub rail: Rail,
    pub external_id: &'a str,
    pub account_name: &'a str,
    pub grant: &'a Grant,
    /// `oauth`, `link` or `api_key`.
    pub method: &'a str,
    /// The audit subject of a refusal.
    pub subject: &'a str,
}

pub async fn store(
    st: &ServerState,
    user: &CurrentUser,
    granted: Granted<'_>,
) -> Result<Response, ConnectError> {
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
    let mut tx = super::guard::begin(st).await?;
    let (client, created) = match client {
        Some(c) => (c, false),
        None => (
            clients::create(&mut tx, &user.firm_id, account_name, "USD", now)
                .await
                .doing("creating the client")?,
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
    .doing("storing the connection")?;
    let taken = match outcome {
        ConnectOutcome::Connected => None,
        ConnectOutcome::AccountTaken { client_name } => Some((
            Refusal::AccountTaken,
            "account_taken",
            format!(
                "{account_name} is already connected to {client_name} in your firm. Nothing was connected."
            ),
        )),
        ConnectOutcome::OtherAccount { .. } => Some((
            Refusal::Other,
            "other_account",
            format!(
                "This client is connected to another {} account; reconnect must authorize the same one. Nothing was changed.",
                rail_name(rail)
            ),
        )),
    };
    if let Some((refusal, reason, message)) = taken {
        drop(tx);
        // A pasted Stripe key is the customer's own: theirs to delete.
        if method != "api_key" && should_give_back(rail, refusal) {
            give_back(st, rail, grant, external_id).await;
        }
        let firm = user.firm_id.as_str();
        return Err(refuse_flow(st, firm, rail, subject, reason, message).await);
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
        .doing("auditing the new client")?;
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
    .doing("auditing the connection")?;
    let unhealthy = connections::unhealthy_rails(&mut tx, client.as_str())
        .await
        .doing("reading the client's rails")?;
    if unhealthy.is_empty() {
        hygiene::resolve_for_client(
            &mut tx,
            client.as_str(),
            ReasonCode::RailReauthNeeded,
            now,
            "Cleared itself: the rail was reconnected.",
        )
        .await
        .doing("resolving the reconnect item")?;
    }
    let mut first = vec![Job::SyncClient {
        client_id: client.to_string(),
    }];
    if rail == Rail::Ramp {
        // Its own webhook subscription, made in the background.
        first.push(Job::SubscribeRampWebhooks {
            client_id: client.to_string(),
        });
    }
    for job in &first {
        job_queue::enqueue(&mut tx, job, now, now)
            .await
            .doing("enqueueing the first sync")?;
    }
    commit(tx).await.doing("storing the connection")?;
    st.services.runner_wake.notify_one();
    Ok(Redirect::to(&format!("/connections?connected={}", rail.as_str())).into_response())
}
