//! Ramp webhooks per connection: RowCol subscribes through Ramp's API when
//! a Ramp connection is made, keeps that subscription's own secret (sealed,
//! bound to the connection), and completes Ramp's verification handshake
//! when the `webhooks.verification` event arrives (see `inbox`).

use super::JobError;
use crate::connections::with_auth;
use crate::services::Services;
use app::model::Rail;
use app::ssr::store::connections;

/// The events RowCol listens to.
pub const RAMP_EVENTS: &[&str] = &["bills.paid"];

pub fn endpoint(svc: &Services) -> String {
    format!("{}/webhooks/ramp", svc.public_url.trim_end_matches('/'))
}

/// Subscribe the client's Ramp connection. A subscription of ours to the
/// same endpoint left by an earlier attempt (its answer lost: the secret is
/// shown only once) is deleted first, so exactly one remains.
pub async fn run(st: &Services, client_id: &str) -> Result<(), JobError> {
    let creds = {
        let mut conn = st.db.acquire().await?;
        connections::sealed_credentials(&mut conn, client_id, Rail::Ramp).await?
    };
    let Some(creds) = creds.filter(|c| c.status == "active") else {
        return Ok(());
    };
    let url = endpoint(st);
    let ramp = &st.onboarding.ramp;
    let existing = with_auth(st, client_id, Rail::Ramp, |auth| async move {
        ramp.list_webhooks(&auth).await
    })
    .await?;
    for old in existing.iter().filter(|s| s.endpoint_url == url) {
        let id = old.id.clone();
        with_auth(st, client_id, Rail::Ramp, |auth| {
            let id = id.clone();
            async move { ramp.delete_webhook(&auth, &id).await }
        })
        .await?;
    }
    let (sub, secret) = with_auth(st, client_id, Rail::Ramp, |auth| {
        let url = url.clone();
        async move { ramp.create_webhook(&auth, &url, RAMP_EVENTS).await }
    })
    .await?;
    let sealed = st.sealer.seal(secret.expose(), &creds.connection_id);
    let mut conn = st.db.acquire().await?;
    let status = if sub.status.is_empty() {
        "pending_verification"
    } else {
        sub.status.as_str()
    };
    if !connections::set_webhook_subscription(
        &mut conn,
        &creds.connection_id,
        &sub.id,
        &sealed,
        status,
    )
    .await?
    {
        // Disconnected (or reconnected under a new id) meanwhile.
        return Err(JobError::retry(
            "connection_changed",
            "the Ramp connection changed",
        ));
    }
    drop(conn);
    // Its deliveries are signed with the new secret: hold it at once.
    st.ramp_secrets.reload_logged(&st.db, &st.sealer).await;
    tracing::info!(
        client = client_id,
        subscription = sub.id,
        "subscribed to Ramp webhooks"
    );
    Ok(())
}

/// `webhooks.verification`: send the challenge back for the subscription.
pub async fn verify(st: &Services, body: &serde_json::Value) -> Result<String, JobError> {
    let sub_id = body
        .pointer("/object/id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| JobError::fatal("malformed", "verification without object.id"))?;
    // Ramp's documentation is thin here: the challenge is read at the top
    // level (as integrations do), or inside `object`.
    let challenge = body
        .get("challenge")
        .or_else(|| body.pointer("/object/challenge"))
        .and_then(|v| v.as_str())
        .ok_or_else(|| JobError::fatal("malformed", "verification without challenge"))?
        .to_owned();
    let client = {
        let mut conn = st.db.acquire().await?;
        connections::client_for_subscription(&mut conn, sub_id).await?
    };
    let Some(client_id) = client else {
        return Ok(format!("ignored: subscription {sub_id} is not one of ours"));
    };
    let ramp = &st.onboarding.ramp;
    let sub = sub_id.to_owned();
    with_auth(st, &client_id, Rail::Ramp, |auth| {
        let (sub, challenge) = (sub.clone(), challenge.clone());
        async move { ramp.verify_webhook(&auth, &sub, &challenge).await }
    })
    .await?;
    let mut conn = st.db.acquire().await?;
    connections::set_webhook_status(&mut conn, sub_id, "active").await?;
    Ok(format!("verified subscription {sub_id}"))
}
