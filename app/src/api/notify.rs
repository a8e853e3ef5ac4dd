//! Notifications (issue #18 §5): each person's digest of what changed since
//! they last looked, and their choices of what reaches them by email and
//! by a Slack-compatible webhook. Everything is the signed-in person's own
//! and scoped to their firm.
// A plain form's checkboxes are a server function's arguments, one each
// (the macro's generated functions take them all, so the allowance is for
// the module).
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::model::{DigestView, NotifySettingsView};
use leptos::prelude::*;

/// The digest: what changed since the person last marked it seen.
#[server(endpoint = "digest")]
pub async fn get_digest() -> Result<DigestView, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::digest().await)
}

/// Mark everything up to now as seen (back to the digest).
#[server(endpoint = "digest/seen")]
pub async fn mark_digest_seen() -> Result<(), AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::mark_seen().await)
}

/// The person's notification choices.
#[server(endpoint = "notify/settings")]
pub async fn get_notify_settings() -> Result<NotifySettingsView, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::settings().await)
}

/// Save the person's choices: one checkbox per channel and topic (present
/// when ticked), a new webhook address (blank keeps the one set), or
/// removing it.
#[server(endpoint = "notify/save")]
pub async fn save_notify_settings(
    #[server(default)] email_payment_failed: Option<String>,
    #[server(default)] email_payment_returned: Option<String>,
    #[server(default)] email_duplicate_payment: Option<String>,
    #[server(default)] email_connection_broken: Option<String>,
    #[server(default)] webhook_payment_failed: Option<String>,
    #[server(default)] webhook_payment_returned: Option<String>,
    #[server(default)] webhook_duplicate_payment: Option<String>,
    #[server(default)] webhook_connection_broken: Option<String>,
    #[server(default)] webhook_url: String,
    #[server(default)] remove_webhook: Option<String>,
) -> Result<String, AppError> {
    use crate::domain::notify::Topic;
    use crate::ssr::auth::respond;
    let pick = |ticks: [&Option<String>; 4]| -> Vec<Topic> {
        Topic::ALL
            .into_iter()
            .zip(ticks)
            .filter(|(_, t)| t.is_some())
            .map(|(topic, _)| topic)
            .collect()
    };
    let email = pick([
        &email_payment_failed,
        &email_payment_returned,
        &email_duplicate_payment,
        &email_connection_broken,
    ]);
    let webhook = pick([
        &webhook_payment_failed,
        &webhook_payment_returned,
        &webhook_duplicate_payment,
        &webhook_connection_broken,
    ]);
    respond(ssr::save(email, webhook, webhook_url, remove_webhook.is_some()).await)
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::domain::notify::{check_webhook_url, Topic};
    use crate::domain::tray::headline;
    use crate::error::AppError;
    use crate::model::{
        BrokenConnection, DigestItem, DigestView, NotifySettingsView, ReasonCode, SentNotice,
        Severity,
    };
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::store::audit::{self, Entry};
    use crate::ssr::store::notify::{self, WebhookChange};
    use crate::ssr::store::{commit, decisions, from_ms, to_ms};
    use chrono::Duration;
    use serde_json::json;

    /// How many items the digest lists (the tray has them all).
    const LIST: i64 = 100;

    pub async fn digest() -> Result<DigestView, AppError> {
        let me = current_user().await?;
        let st = state()?;
        let now = st.clock.now();
        let mut conn = st.db.read().await?;
        let settings = notify::settings(&mut conn, me.user_id.as_str(), me.role).await?;
        let since = settings
            .digest_seen_at
            .map(from_ms)
            .unwrap_or(now - Duration::days(7));
        let rows = notify::items_since(&mut conn, &me.firm_id, to_ms(since), LIST + 1).await?;
        let more = rows.len() as i64 > LIST;
        let (mut urgent, mut flagged) = (Vec::new(), Vec::new());
        for r in rows.into_iter().take(LIST as usize) {
            let Some(reason) = ReasonCode::parse(&r.reason_code) else {
                continue;
            };
            let item = DigestItem {
                hygiene_id: r.hygiene_id,
                client_id: r.client_id,
                client_name: r.client_name,
                payment_id: r.payment_id,
                headline: headline(reason).to_owned(),
                reason_code: reason,
                severity: Severity::parse(&r.severity).unwrap_or(Severity::Medium),
                status: r.status,
                at: from_ms(r.created_at),
            };
            if crate::domain::notify::topic_of(reason).is_some() {
                urgent.push(item);
            } else {
                flagged.push(item);
            }
        }
        let broken = notify::broken_connections(&mut conn, &me.firm_id)
            .await?
            .into_iter()
            .map(|b| BrokenConnection {
                client_id: b.client_id,
                client_name: b.client_name,
                rail: b.rail,
            })
            .collect();
        Ok(DigestView {
            since,
            first_look: settings.digest_seen_at.is_none(),
            urgent,
            flagged,
            more,
            open_now: notify::open_items(&mut conn, &me.firm_id).await?,
            broken,
            waiting: decisions::waiting_count(&mut conn, &me.firm_id).await?,
        })
    }

    pub async fn mark_seen() -> Result<(), AppError> {
        let me = current_user().await?;
        let st = state()?;
        let mut tx = st.db.begin().await?;
        notify::mark_digest_seen(&mut tx, me.user_id.as_str(), me.role, st.clock.now()).await?;
        commit(tx).await?;
        leptos_axum::redirect("/updates");
        Ok(())
    }

    pub async fn settings() -> Result<NotifySettingsView, AppError> {
        let me = current_user().await?;
        let st = state()?;
        let mut conn = st.db.read().await?;
        let s = notify::settings(&mut conn, me.user_id.as_str(), me.role).await?;
        let list = |chosen: &[Topic]| {
            Topic::ALL
                .iter()
                .map(|t| {
                    (
                        t.as_str().to_owned(),
                        t.label().to_owned(),
                        chosen.contains(t),
                    )
                })
                .collect()
        };
        let recent = notify::recent_for_user(&mut conn, &me.firm_id, me.user_id.as_str(), 10)
            .await?
            .into_iter()
            .map(|r| SentNotice {
                channel: r.channel,
                state: r.state,
                attempts: r.attempts,
                last_error: r.last_error,
                at: from_ms(r.sent_at.unwrap_or(r.created_at)),
            })
            .collect();
        Ok(NotifySettingsView {
            mail: st.mail,
            email: me.email.clone(),
            email_topics: list(&s.email_topics),
            webhook_topics: list(&s.webhook_topics),
            webhook_set: s.webhook_sealed.is_some(),
            recent,
        })
    }

    pub async fn save(
        email: Vec<Topic>,
        webhook: Vec<Topic>,
        webhook_url: String,
        remove: bool,
    ) -> Result<String, AppError> {
        let me = current_user().await?;
        let st = state()?;
        let url = webhook_url.trim();
        let change = if remove {
            WebhookChange::Remove
        } else if url.is_empty() {
            WebhookChange::Keep
        } else {
            check_webhook_url(url, st.live).map_err(|m| AppError::Validation(m.into()))?;
            WebhookChange::Set(
                st.sealer
                    .seal(url, &notify::webhook_aad(me.user_id.as_str())),
            )
        };
        let webhook_changed = !matches!(change, WebhookChange::Keep);
        let now = st.clock.now();
        let mut tx = st.db.begin().await?;
        notify::save_settings(
            &mut tx,
            me.user_id.as_str(),
            me.role,
            &email,
            &webhook,
            change,
        )
        .await?;
        let names = |t: &[Topic]| t.iter().map(|t| t.as_str()).collect::<Vec<_>>();
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "user.notifications_changed",
                subject: &me.email,
                // Whether an address was set or removed, never the address.
                detail: json!({
                    "email": names(&email),
                    "webhook": names(&webhook),
                    "webhook_address": if remove { "removed" } else if webhook_changed { "set" } else { "unchanged" },
                }),
            },
        )
        .await?;
        commit(tx).await?;
        leptos_axum::redirect("/account?saved=notifications#notifications");
        Ok("Your notification choices are saved.".into())
    }
}
