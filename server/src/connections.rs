//! A client's rail credentials, opened from their sealed form only when a
//! call is about to be made, and refreshed first when the access token is
//! about to expire. The one place tokens are refreshed: the refresh sweep
//! and every rail call go through [`rail_auth`].

use crate::oauth::tokens::{self, OAuthError};
use crate::rails::{RailAuth, SecretString};
use crate::services::Services;
use app::model::{Rail, ReasonCode, Severity};
use app::ssr::store::connections::{self, ConnStatus, Refreshed, SealedCredentials};
use app::ssr::store::{audit, hygiene, StoreError};
use chrono::{DateTime, Duration, Utc};

/// Refresh when the access token has less than this left (wall clock).
pub const REFRESH_AHEAD: Duration = Duration::minutes(5);
/// How long one refresher holds the right to refresh.
const CLAIM: Duration = Duration::seconds(30);

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("client {client} has no {rail} connection")]
    Missing { client: String, rail: Rail },
    #[error("the {rail} connection needs to be reconnected ({reason})")]
    NeedsReconnect { rail: Rail, reason: String },
    #[error("the {0} connection was disconnected")]
    Disconnected(Rail),
    #[error("the stored {0} token cannot be opened with this key")]
    Sealed(Rail),
    /// The token could not be refreshed just now; try again later.
    #[error("{0}")]
    RefreshUnavailable(String),
    /// RowCol's app credentials at the provider are wrong (configuration).
    #[error("{0}")]
    RefreshRefused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConnectionError {
    pub fn code(&self) -> &'static str {
        match self {
            ConnectionError::Missing { .. } => "not_connected",
            ConnectionError::NeedsReconnect { .. } => "needs_reconnect",
            ConnectionError::Disconnected(_) => "disconnected",
            ConnectionError::Sealed(_) => "sealed",
            ConnectionError::RefreshUnavailable(_) => "refresh_unavailable",
            ConnectionError::RefreshRefused(_) => "refresh_refused",
            ConnectionError::Store(_) => "database",
        }
    }
}

/// Credentials for a call to `rail` on behalf of the client, refreshed if
/// they expire within [`REFRESH_AHEAD`].
pub async fn rail_auth(
    svc: &Services,
    client_id: &str,
    rail: Rail,
) -> Result<RailAuth, ConnectionError> {
    let creds = load(svc, client_id, rail).await?;
    usable(rail, &creds)?;
    let now = Utc::now();
    let expiring = creds
        .access_expires_at
        .is_some_and(|t| app::ssr::store::from_ms(t) - REFRESH_AHEAD < now);
    let creds = if expiring && creds.refresh_sealed.is_some() {
        refresh(svc, client_id, rail, creds, now).await?
    } else {
        creds
    };
    open_auth(svc, rail, &creds)
}

async fn load(
    svc: &Services,
    client_id: &str,
    rail: Rail,
) -> Result<SealedCredentials, ConnectionError> {
    let mut conn = svc.db.acquire().await?;
    connections::sealed_credentials(&mut conn, client_id, rail)
        .await?
        .ok_or_else(|| ConnectionError::Missing {
            client: client_id.to_owned(),
            rail,
        })
}

fn usable(rail: Rail, creds: &SealedCredentials) -> Result<(), ConnectionError> {
    match ConnStatus::parse(&creds.status) {
        Some(ConnStatus::Active) => Ok(()),
        // A Plaid item that needs its login still has a valid token: calls
        // are how RowCol learns the login was repaired (they succeed again).
        Some(ConnStatus::NeedsReconnect) if rail == Rail::Plaid => Ok(()),
        Some(ConnStatus::NeedsReconnect) => Err(ConnectionError::NeedsReconnect {
            rail,
            reason: creds
                .last_error
                .clone()
                .unwrap_or_else(|| "the provider refused its token".into()),
        }),
        _ => Err(ConnectionError::Disconnected(rail)),
    }
}

fn open_auth(
    svc: &Services,
    rail: Rail,
    creds: &SealedCredentials,
) -> Result<RailAuth, ConnectionError> {
    let sealed = creds
        .token_sealed
        .as_deref()
        .ok_or(ConnectionError::Disconnected(rail))?;
    let token = svc
        .sealer
        .open(sealed, &creds.connection_id)
        .map_err(|_| ConnectionError::Sealed(rail))?;
    Ok(RailAuth {
        external_id: creds.external_id.clone(),
        access_token: SecretString::new(token),
    })
}

/// A call made through [`with_auth`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthedError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Rail(#[from] crate::rails::RailError),
}

impl From<AuthedError> for crate::jobs::JobError {
    fn from(e: AuthedError) -> Self {
        match e {
            AuthedError::Connection(c) => c.into(),
            AuthedError::Rail(r) => r.into(),
        }
    }
}

/// Call the rail with the connection's credentials. A 401 means the token
/// died before its recorded expiry (revoked, expired early, rotated away):
/// refresh once and call again; a grant that cannot be refreshed marks the
/// connection "needs reconnect".
pub async fn with_auth<T, F, Fut>(
    svc: &Services,
    client_id: &str,
    rail: Rail,
    call: F,
) -> Result<T, AuthedError>
where
    F: Fn(RailAuth) -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::rails::RailError>>,
{
    let auth = rail_auth(svc, client_id, rail).await?;
    match call(auth).await {
        Err(crate::rails::RailError::Unauthorized(why)) => {
            tracing::info!(client = client_id, %rail, "token refused before its expiry; refreshing");
            let auth = refresh_now(svc, client_id, rail, &why).await?;
            Ok(call(auth).await?)
        }
        other => Ok(other?),
    }
}

/// Refresh now, whatever the recorded expiry. Without a refresh token (a
/// Plaid item, a pasted key) there is nothing to try: the connection needs
/// the person.
pub async fn refresh_now(
    svc: &Services,
    client_id: &str,
    rail: Rail,
    why: &str,
) -> Result<RailAuth, ConnectionError> {
    let creds = load(svc, client_id, rail).await?;
    usable(rail, &creds)?;
    if creds.refresh_sealed.is_none() {
        let reason = format!("the provider refused the stored credentials ({why}); reconnect it");
        mark_needs_reconnect(svc, client_id, rail, &creds, &reason).await?;
        return Err(ConnectionError::NeedsReconnect { rail, reason });
    }
    let fresh = refresh(svc, client_id, rail, creds, Utc::now()).await?;
    open_auth(svc, rail, &fresh)
}

/// Refresh the connection's tokens, once however many callers want it:
/// the one that claims the connection calls the provider and stores the new
/// access and refresh token together; the others wait for its result.
pub async fn refresh(
    svc: &Services,
    client_id: &str,
    rail: Rail,
    creds: SealedCredentials,
    now: DateTime<Utc>,
) -> Result<SealedCredentials, ConnectionError> {
    let claimed = {
        let mut conn = svc.db.acquire().await?;
        connections::claim_refresh(
            &mut conn,
            &creds.connection_id,
            creds.token_version,
            now.timestamp_millis(),
            (now + CLAIM).timestamp_millis(),
        )
        .await?
    };
    if !claimed {
        return wait_for_other(svc, client_id, rail, &creds).await;
    }
    let Some(provider) = svc.providers.as_ref().and_then(|p| p.get(rail)) else {
        release(svc, &creds).await;
        return Err(ConnectionError::RefreshRefused(format!(
            "no OAuth app is configured for {rail}"
        )));
    };
    let rt = creds
        .refresh_sealed
        .as_deref()
        .ok_or(ConnectionError::Disconnected(rail))
        .and_then(|s| {
            svc.sealer
                .open(s, &creds.connection_id)
                .map_err(|_| ConnectionError::Sealed(rail))
        })?;
    match tokens::refresh(&svc.oauth_http, provider, &SecretString::new(rt)).await {
        Ok(g) => {
            let token_sealed = svc
                .sealer
                .seal(g.access_token.expose(), &creds.connection_id);
            let refresh_sealed = g
                .refresh_token
                .as_ref()
                .map(|t| svc.sealer.seal(t.expose(), &creds.connection_id));
            let mut conn = svc.db.acquire().await?;
            let stored = connections::store_refreshed(
                &mut conn,
                &creds.connection_id,
                creds.token_version,
                &Refreshed {
                    token_sealed: &token_sealed,
                    refresh_sealed: refresh_sealed.as_deref(),
                    access_expires_at: g.access_expires_at,
                    refresh_expires_at: g.refresh_expires_at,
                },
                Utc::now(),
            )
            .await?;
            if !stored {
                // Disconnected meanwhile: its tokens are gone on purpose.
                return Err(ConnectionError::Disconnected(rail));
            }
            tracing::info!(client = client_id, %rail, "tokens refreshed");
            drop(conn);
            load(svc, client_id, rail).await
        }
        Err(OAuthError::InvalidGrant { detail, .. }) => {
            let reason = format!("the provider refused the refresh ({detail}); reconnect it");
            mark_needs_reconnect(svc, client_id, rail, &creds, &reason).await?;
            Err(ConnectionError::NeedsReconnect { rail, reason })
        }
        Err(e) => {
            release(svc, &creds).await;
            let mut conn = svc.db.acquire().await?;
            connections::record_error(
                &mut conn,
                &creds.connection_id,
                &format!("token refresh failed: {e}"),
                Utc::now(),
            )
            .await?;
            match e {
                OAuthError::Transient { .. } => {
                    Err(ConnectionError::RefreshUnavailable(e.to_string()))
                }
                _ => Err(ConnectionError::RefreshRefused(e.to_string())),
            }
        }
    }
}

async fn release(svc: &Services, creds: &SealedCredentials) {
    if let Ok(mut conn) = svc.db.acquire().await {
        let _ = connections::release_refresh_claim(
            &mut conn,
            &creds.connection_id,
            creds.token_version,
        )
        .await;
    }
}

/// Another caller holds the refresh: wait (briefly) for its new version.
async fn wait_for_other(
    svc: &Services,
    client_id: &str,
    rail: Rail,
    seen: &SealedCredentials,
) -> Result<SealedCredentials, ConnectionError> {
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = load(svc, client_id, rail).await?;
        if now.token_version != seen.token_version || now.status != seen.status {
            usable(rail, &now)?;
            return Ok(now);
        }
    }
    Err(ConnectionError::RefreshUnavailable(format!(
        "the {rail} token is being refreshed; try again shortly"
    )))
}

/// The provider refused the grant: the connection needs the person. Filed
/// once in the hygiene tray (with a reconnect action) and in the audit log;
/// approvals for the client stop until it is reconnected.
pub async fn mark_needs_reconnect(
    svc: &Services,
    client_id: &str,
    rail: Rail,
    creds: &SealedCredentials,
    reason: &str,
) -> Result<(), ConnectionError> {
    let at = svc.clock.now();
    let mut tx = svc.db.begin().await?;
    let moved = connections::set_status(
        &mut tx,
        &creds.connection_id,
        &[ConnStatus::Active],
        ConnStatus::NeedsReconnect,
        Some(reason),
        at,
    )
    .await?;
    if moved {
        if !hygiene::client_has_open(&mut tx, client_id, ReasonCode::RailReauthNeeded).await? {
            hygiene::file(
                &mut tx,
                hygiene::NewItem {
                    firm_id: &creds.firm_id,
                    client_id: Some(client_id),
                    payment_id: None,
                    severity: Severity::High,
                    reason_code: ReasonCode::RailReauthNeeded,
                    detail: &format!("{}: {reason}", rail_name(rail)),
                    at,
                    job_id: None,
                    opened_by: None,
                },
            )
            .await?;
        }
        let firm = app::model::FirmId::parse(&creds.firm_id)
            .map_err(|_| StoreError::Corrupt(format!("firm id {:?}", creds.firm_id)))?;
        audit::record(
            &mut tx,
            &firm,
            at,
            audit::Entry {
                actor: "rowcol",
                action: "connection.needs_reconnect",
                subject: client_id,
                detail: serde_json::json!({ "rail": rail.as_str(), "reason": reason }),
            },
        )
        .await?;
    }
    app::ssr::store::commit(tx).await?;
    if moved {
        tracing::warn!(client = client_id, %rail, "connection needs reconnect");
    }
    Ok(())
}

/// A Plaid login reported working again: the connection is healthy.
pub async fn mark_repaired(
    svc: &Services,
    client_id: &str,
    rail: Rail,
) -> Result<bool, ConnectionError> {
    let creds = load(svc, client_id, rail).await?;
    let at = svc.clock.now();
    let mut conn = svc.db.acquire().await?;
    let moved = connections::set_status(
        &mut conn,
        &creds.connection_id,
        &[ConnStatus::NeedsReconnect],
        ConnStatus::Active,
        None,
        at,
    )
    .await?;
    if moved {
        let unhealthy = connections::unhealthy_rails(&mut conn, client_id).await?;
        if unhealthy.is_empty() {
            hygiene::resolve_for_client(
                &mut conn,
                client_id,
                ReasonCode::RailReauthNeeded,
                at,
                "Cleared itself: the connection works again.",
            )
            .await?;
        }
    }
    Ok(moved)
}

/// Refresh every connection whose access token expires within
/// [`REFRESH_AHEAD`] (wall clock), so calls never wait on a refresh and a
/// dead grant is found (and shown) before anyone needs it. Failures are
/// recorded on the connection by [`refresh`].
pub async fn refresh_due(svc: &Services) {
    let before = (Utc::now() + REFRESH_AHEAD).timestamp_millis();
    let due = match svc.db.acquire().await {
        Ok(mut conn) => connections::due_for_refresh(&mut conn, before).await,
        Err(e) => Err(e),
    };
    let due = match due {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "listing connections to refresh failed");
            return;
        }
    };
    for (client_id, rail) in due {
        let Some(rail) = Rail::parse(&rail) else {
            continue;
        };
        if let Err(e) = rail_auth(svc, &client_id, rail).await {
            tracing::warn!(client = %client_id, %rail, code = e.code(), "refresh ahead of expiry failed");
        }
    }
}

pub fn rail_name(rail: Rail) -> &'static str {
    match rail {
        Rail::Qbo => "QuickBooks Online",
        Rail::Ramp => "Ramp",
        Rail::Plaid => "the bank (Plaid)",
        Rail::Stripe => "Stripe",
    }
}
