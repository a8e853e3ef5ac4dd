//! Telling people: a critical tray item becomes one stored message per
//! person and channel they chose (`notify_item`), and each message is sent
//! by its own job (`deliver`) with its own retries, at most once.

use super::JobError;
use crate::notify::SendError;
use crate::services::Services;
use app::domain::notify::{item_message, topic_of, Channel, Message};
use app::model::{Currency, FirmId, Money, ReasonCode};
use app::ssr::notices::{self, Queue};
use app::ssr::store::notify::{self, BeginSend, Settle};
use app::ssr::store::{commit, hygiene};

/// Fan an item out to the people who asked for its topic. Running it again
/// (a replay, a second worker) adds nothing: each message's key is the
/// item, the person and the channel.
pub async fn run_item(st: &Services, hygiene_id: &str) -> Result<(), JobError> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let Some(item) = hygiene::for_notice(&mut tx, hygiene_id).await? else {
        return Ok(());
    };
    // Cleared before anyone was told (late evidence, a quick fix): the
    // digest and the tray's resolved view still show it.
    if item.status != "open" {
        return Ok(());
    }
    let Some(reason) = ReasonCode::parse(&item.reason_code) else {
        return Err(JobError::fatal("corrupt", "an item's reason code"));
    };
    let Some(topic) = topic_of(reason) else {
        return Ok(());
    };
    let link = match &item.client_id {
        Some(c) => format!("{}/hygiene?client={c}", st.public_url),
        None => format!("{}/hygiene", st.public_url),
    };
    let payment = match (item.amount_minor, item.currency.as_deref()) {
        (Some(minor), Some(cur)) => {
            let money = Money::new(
                minor,
                Currency::parse(cur).map_err(|e| JobError::fatal("corrupt", e.to_string()))?,
            );
            Some(match &item.vendor_name {
                Some(v) => format!("{money} to {v}"),
                None => money.to_string(),
            })
        }
        _ => None,
    };
    let message = item_message(
        reason,
        item.client_name.as_deref(),
        payment.as_deref(),
        &link,
    );
    let subject_key = format!("item:{hygiene_id}");
    let firm = FirmId::parse(&item.firm_id)
        .map_err(|_| JobError::fatal("corrupt", "an item's firm id"))?;
    for r in notify::recipients(&mut tx, &firm).await? {
        for channel in [Channel::Email, Channel::Webhook] {
            if !r.settings.wants(topic, channel) {
                continue;
            }
            // No mail server configured: the digest and the tray say it.
            if channel == Channel::Email && st.mailer.is_none() {
                continue;
            }
            notices::queue(
                &mut tx,
                &st.sealer,
                Queue {
                    firm_id: &item.firm_id,
                    subject_key: &subject_key,
                    recipient: &r.user_id,
                    user_id: Some(&r.user_id),
                    channel,
                    to_address: (channel == Channel::Email).then_some(r.email.as_str()),
                    message: &message,
                    at: now,
                },
            )
            .await?;
        }
    }
    commit(tx).await?;
    st.runner_wake.notify_one();
    Ok(())
}

/// Send one stored message. Its state is `sending` (committed) before
/// anything leaves, so an attempt that dies mid-send is found by the next
/// one and the message becomes `uncertain` instead of going twice.
pub async fn run_deliver(st: &Services, notification_id: &str) -> Result<(), JobError> {
    let mut tx = st.db.begin().await?;
    let begun = notify::begin_send(&mut tx, notification_id).await?;
    commit(tx).await?;
    let out = match begun {
        BeginSend::Send(out) => out,
        BeginSend::Settled => return Ok(()),
        BeginSend::WasInFlight => {
            tracing::warn!(notification = %notification_id, "an earlier attempt stopped while sending; not sent again");
            return Ok(());
        }
    };
    let sent = send(st, &out).await;
    let mut conn = st.db.acquire().await?;
    // The person's account page shows the error's words; the job's attempt
    // row keeps its code as well.
    let (to, failure) = match &sent {
        Ok(()) => (Settle::Sent(st.clock.now()), None),
        Err(SendError::Retry(e)) => (Settle::Retry, Some(("notify_refused", e))),
        Err(SendError::Permanent(e)) => (Settle::Failed, Some(("notify_rejected", e))),
        Err(SendError::Unknown(e)) => (Settle::Uncertain, Some(("notify_uncertain", e))),
    };
    notify::settle(
        &mut conn,
        notification_id,
        to,
        failure.map(|(_, e)| e.as_str()),
    )
    .await?;
    match failure {
        None => Ok(()),
        Some((code, e)) if matches!(to, Settle::Retry) => Err(JobError::retry(code, e.clone())),
        Some((code, e)) => Err(JobError::fatal(code, e.clone())),
    }
}

async fn send(st: &Services, out: &notify::Outgoing) -> Result<(), SendError> {
    let opened = st
        .sealer
        .open(
            &out.message_sealed,
            &notify::message_aad(&out.notification_id),
        )
        .map_err(|_| SendError::Permanent("the stored message does not open".into()))?;
    let message: Message = serde_json::from_str(&opened)
        .map_err(|_| SendError::Permanent("the stored message is unreadable".into()))?;
    match Channel::parse(&out.channel) {
        Some(Channel::Email) => {
            let Some(mailer) = &st.mailer else {
                return Err(SendError::Permanent("no mail server is configured".into()));
            };
            let Some(to) = &out.to_address else {
                return Err(SendError::Permanent("the message has no address".into()));
            };
            mailer.send(to, &message.subject, &message.text).await
        }
        Some(Channel::Webhook) => {
            // The address as the person has it now (they may have changed
            // or removed it since).
            let url = webhook_of(st, out).await?;
            crate::notify::webhook::post(&st.webhook_http, &url, &message.text).await
        }
        None => Err(SendError::Permanent("an unknown channel".into())),
    }
}

async fn webhook_of(st: &Services, out: &notify::Outgoing) -> Result<String, SendError> {
    let Some(user_id) = &out.user_id else {
        return Err(SendError::Permanent(
            "a webhook message without a person".into(),
        ));
    };
    let sealed: Option<String> = {
        let mut conn = st
            .db
            .acquire()
            .await
            .map_err(|e| SendError::Retry(format!("the database: {e}")))?;
        notify::webhook_sealed(&mut conn, user_id)
            .await
            .map_err(|e| SendError::Retry(format!("the database: {e}")))?
    };
    let Some(sealed) = sealed else {
        return Err(SendError::Permanent(
            "the person no longer has a webhook address".into(),
        ));
    };
    st.sealer
        .open(&sealed, &notify::webhook_aad(user_id))
        .map_err(|_| SendError::Permanent("the stored webhook address does not open".into()))
}
