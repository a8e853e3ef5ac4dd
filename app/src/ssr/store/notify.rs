//! Notifications (`notify_setting`, `notification`): each person's choices
//! and every message RowCol sends, one row per item, person and channel.
//! A message's state changes only here, each change guarded on the state
//! it leaves: `queued` → `sending` → `sent`, back to `queued` after a
//! failure worth retrying, `failed` when retrying cannot help, and
//! `uncertain` when an attempt died while sending (it is never sent again:
//! at most once).

use super::db::{to_ms, Tx};
use super::StoreResult;
use crate::domain::notify::{default_email_topics, format_topics, parse_topics, Channel, Topic};
use crate::model::{FirmId, Role};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// A person's choices, with their role's defaults where they have made none.
#[derive(Debug, Clone)]
pub struct Settings {
    pub email_topics: Vec<Topic>,
    pub webhook_topics: Vec<Topic>,
    /// The webhook address, sealed (bound to the user id).
    pub webhook_sealed: Option<String>,
    pub digest_seen_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct SettingRow {
    email_topics: String,
    webhook_topics: String,
    webhook_sealed: Option<String>,
    digest_seen_at: Option<i64>,
}

impl Settings {
    fn from_row(row: Option<SettingRow>, role: Role) -> Settings {
        match row {
            Some(r) => Settings {
                email_topics: parse_topics(&r.email_topics),
                webhook_topics: parse_topics(&r.webhook_topics),
                webhook_sealed: r.webhook_sealed,
                digest_seen_at: r.digest_seen_at,
            },
            None => Settings {
                email_topics: default_email_topics(role),
                webhook_topics: Vec::new(),
                webhook_sealed: None,
                digest_seen_at: None,
            },
        }
    }

    /// Whether the person wants `topic` over `channel` (a webhook needs an
    /// address as well).
    pub fn wants(&self, topic: Topic, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email_topics.contains(&topic),
            Channel::Webhook => {
                self.webhook_sealed.is_some() && self.webhook_topics.contains(&topic)
            }
        }
    }
}

pub async fn settings(
    conn: &mut AnyConnection,
    user_id: &str,
    role: Role,
) -> StoreResult<Settings> {
    let row: Option<SettingRow> = sqlx::query_as(
        "select email_topics, webhook_topics, webhook_sealed, digest_seen_at
         from notify_setting where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(Settings::from_row(row, role))
}

/// What to do with the stored webhook address.
pub enum WebhookChange {
    Keep,
    Set(String),
    Remove,
}

/// Save a person's choices (the digest's last look is kept).
pub async fn save_settings(
    tx: &mut Tx<'_>,
    user_id: &str,
    role: Role,
    email_topics: &[Topic],
    webhook_topics: &[Topic],
    webhook: WebhookChange,
) -> StoreResult<()> {
    let current = settings(tx, user_id, role).await?;
    let sealed = match webhook {
        WebhookChange::Keep => current.webhook_sealed,
        WebhookChange::Set(s) => Some(s),
        WebhookChange::Remove => None,
    };
    upsert(
        tx,
        user_id,
        &format_topics(email_topics),
        &format_topics(webhook_topics),
        sealed.as_deref(),
        current.digest_seen_at,
    )
    .await
}

/// The person has seen their digest up to `at`.
pub async fn mark_digest_seen(
    tx: &mut Tx<'_>,
    user_id: &str,
    role: Role,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let s = settings(tx, user_id, role).await?;
    upsert(
        tx,
        user_id,
        &format_topics(&s.email_topics),
        &format_topics(&s.webhook_topics),
        s.webhook_sealed.as_deref(),
        Some(to_ms(at)),
    )
    .await
}

async fn upsert(
    tx: &mut Tx<'_>,
    user_id: &str,
    email_topics: &str,
    webhook_topics: &str,
    webhook_sealed: Option<&str>,
    digest_seen_at: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into notify_setting (user_id, email_topics, webhook_topics, webhook_sealed, digest_seen_at)
         values ($1, $2, $3, $4, $5)
         on conflict (user_id) do update set email_topics = $2, webhook_topics = $3,
             webhook_sealed = $4, digest_seen_at = $5",
    )
    .bind(user_id)
    .bind(email_topics)
    .bind(webhook_topics)
    .bind(webhook_sealed)
    .bind(digest_seen_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An active person of the firm, with their choices.
pub struct Recipient {
    pub user_id: String,
    pub email: String,
    pub settings: Settings,
}

#[derive(sqlx::FromRow)]
struct RecipientRow {
    user_id: String,
    email: String,
    role: String,
    email_topics: Option<String>,
    webhook_topics: Option<String>,
    webhook_sealed: Option<String>,
    digest_seen_at: Option<i64>,
}

/// The firm's active people and what each wants to receive.
pub async fn recipients(conn: &mut AnyConnection, firm_id: &FirmId) -> StoreResult<Vec<Recipient>> {
    let rows: Vec<RecipientRow> = sqlx::query_as(
        "select u.user_id, u.email, u.role, s.email_topics, s.webhook_topics, s.webhook_sealed,
                s.digest_seen_at
         from app_user u left join notify_setting s on s.user_id = u.user_id
         where u.firm_id = $1 and u.deactivated_at is null
         order by u.email",
    )
    .bind(firm_id.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let role = Role::parse(&r.role).ok_or_else(|| super::corrupt("a user's role"))?;
            let row = match (r.email_topics, r.webhook_topics) {
                (Some(e), Some(w)) => Some(SettingRow {
                    email_topics: e,
                    webhook_topics: w,
                    webhook_sealed: r.webhook_sealed,
                    digest_seen_at: r.digest_seen_at,
                }),
                _ => None,
            };
            Ok(Recipient {
                user_id: r.user_id,
                email: r.email,
                settings: Settings::from_row(row, role),
            })
        })
        .collect()
}

/// A new message's id (its sealed text is bound to it, so the id is made
/// before the row).
pub fn new_id() -> String {
    format!("ntf_{}", uuid::Uuid::new_v4().simple())
}

/// What a message's sealed text is bound to.
pub fn message_aad(notification_id: &str) -> String {
    format!("notification:{notification_id}")
}

/// What a person's sealed webhook address is bound to.
pub fn webhook_aad(user_id: &str) -> String {
    format!("notify_webhook:{user_id}")
}

/// A message to store and send.
pub struct NewNotification<'a> {
    pub notification_id: &'a str,
    pub firm_id: &'a str,
    /// What it is about (`item:{hygiene id}`, `link:{token hash}`): with
    /// the recipient and channel, its at-most-once key.
    pub subject_key: &'a str,
    /// The user id, or the address of someone not yet a user (an invitee).
    pub recipient: &'a str,
    pub user_id: Option<&'a str>,
    pub channel: Channel,
    pub to_address: Option<&'a str>,
    pub message_sealed: &'a str,
    pub at: DateTime<Utc>,
}

/// Store a message; `false` when the same item already went (or is going)
/// to that recipient over that channel.
pub async fn insert(tx: &mut Tx<'_>, n: &NewNotification<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        "insert into notification (notification_id, firm_id, subject_key, recipient, user_id, channel,
             to_address, message_sealed, state, attempts, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9)
         on conflict (subject_key, recipient, channel) do nothing",
    )
    .bind(n.notification_id)
    .bind(n.firm_id)
    .bind(n.subject_key)
    .bind(n.recipient)
    .bind(n.user_id)
    .bind(n.channel.as_str())
    .bind(n.to_address)
    .bind(n.message_sealed)
    .bind(to_ms(n.at))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A message as the sender needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outgoing {
    pub notification_id: String,
    pub firm_id: String,
    pub user_id: Option<String>,
    pub channel: String,
    pub to_address: Option<String>,
    pub message_sealed: String,
}

/// What the sender may do with a message.
#[derive(Debug)]
pub enum BeginSend {
    /// It is now `sending`: send it.
    Send(Outgoing),
    /// Sent, failed or uncertain already: nothing to do.
    Settled,
    /// An earlier attempt died while sending; it is now `uncertain`.
    WasInFlight,
}

/// Move a queued message to `sending` (committed before anything is sent).
pub async fn begin_send(tx: &mut Tx<'_>, notification_id: &str) -> StoreResult<BeginSend> {
    let moved = sqlx::query(
        "update notification set state = 'sending', attempts = attempts + 1
         where notification_id = $1 and state = 'queued'",
    )
    .bind(notification_id)
    .execute(&mut **tx)
    .await?;
    if moved.rows_affected() == 1 {
        let row: Outgoing = sqlx::query_as(
            "select notification_id, firm_id, user_id, channel, to_address, message_sealed
             from notification where notification_id = $1",
        )
        .bind(notification_id)
        .fetch_one(&mut **tx)
        .await?;
        return Ok(BeginSend::Send(row));
    }
    let uncertain = sqlx::query(
        "update notification set state = 'uncertain',
             last_error = 'an attempt stopped while sending; not sent again'
         where notification_id = $1 and state = 'sending'",
    )
    .bind(notification_id)
    .execute(&mut **tx)
    .await?;
    Ok(if uncertain.rows_affected() == 1 {
        BeginSend::WasInFlight
    } else {
        BeginSend::Settled
    })
}

/// Where a sent (or refused) message goes next.
#[derive(Debug, Clone, Copy)]
pub enum Settle {
    /// It went (from `sending`, or `uncertain` if an attempt thought to
    /// have died finishes after all).
    Sent(DateTime<Utc>),
    /// Refused before anything went: `queued` again for the next try.
    Retry,
    /// The send broke off after the message was handed over: it may have
    /// arrived, so it is not sent again.
    Uncertain,
    /// Retrying cannot help (refused for good, or the retries ran out).
    Failed,
}

/// Settle a message after a send: the one place its state moves after
/// `begin_send`, each move guarded on the states it may leave.
pub async fn settle(
    conn: &mut AnyConnection,
    notification_id: &str,
    to: Settle,
    error: Option<&str>,
) -> StoreResult<()> {
    let (state, from, sent_at) = match to {
        Settle::Sent(at) => ("sent", "('sending', 'uncertain')", Some(to_ms(at))),
        Settle::Retry => ("queued", "('sending')", None),
        Settle::Uncertain => ("uncertain", "('sending')", None),
        Settle::Failed => ("failed", "('queued', 'sending')", None),
    };
    sqlx::query(&format!(
        "update notification set state = $2, last_error = $3, sent_at = coalesce($4, sent_at)
         where notification_id = $1 and state in {from}"
    ))
    .bind(notification_id)
    .bind(state)
    .bind(error)
    .bind(sent_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A message as its recipient's account page lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SentRow {
    pub subject_key: String,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// The person's latest messages, newest first.
pub async fn recent_for_user(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
    user_id: &str,
    limit: i64,
) -> StoreResult<Vec<SentRow>> {
    Ok(sqlx::query_as(
        "select subject_key, channel, state, attempts, last_error, created_at, sent_at
         from notification where firm_id = $1 and user_id = $2
         order by created_at desc, notification_id limit $3",
    )
    .bind(firm_id.as_str())
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The person's sealed webhook address, if they have one.
pub async fn webhook_sealed(
    conn: &mut AnyConnection,
    user_id: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "select webhook_sealed from notify_setting where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .flatten())
}

/// A tray item filed since the person last looked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DigestItemRow {
    pub hygiene_id: String,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub payment_id: Option<String>,
    pub reason_code: String,
    pub severity: String,
    pub status: String,
    pub created_at: i64,
}

/// The firm's items filed after `since_ms`, newest first (at most `limit`).
pub async fn items_since(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
    since_ms: i64,
    limit: i64,
) -> StoreResult<Vec<DigestItemRow>> {
    Ok(sqlx::query_as(
        "select h.hygiene_id, h.client_id, c.name as client_name, h.payment_id, h.reason_code,
                h.severity, h.status, h.created_at
         from hygiene_item h left join client c on c.client_id = h.client_id
         where h.firm_id = $1 and h.created_at > $2
         order by h.created_at desc, h.hygiene_id limit $3",
    )
    .bind(firm_id.as_str())
    .bind(since_ms)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// How many of the firm's items are open now.
pub async fn open_items(conn: &mut AnyConnection, firm_id: &FirmId) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from hygiene_item where firm_id = $1 and status = 'open'",
    )
    .bind(firm_id.as_str())
    .fetch_one(conn)
    .await?)
}

/// A connection that needs its owner to sign in again.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BrokenRow {
    pub client_id: String,
    pub client_name: String,
    pub rail: String,
}

/// The firm's connections that need signing in again, now.
pub async fn broken_connections(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
) -> StoreResult<Vec<BrokenRow>> {
    Ok(sqlx::query_as(
        "select r.client_id, c.name as client_name, r.rail
         from rail_connection r join client c on c.client_id = r.client_id
         where r.firm_id = $1 and r.status = 'needs_reconnect'
         order by c.name, r.rail",
    )
    .bind(firm_id.as_str())
    .fetch_all(conn)
    .await?)
}

/// Every sealed webhook address, by user id (`rowcol rotate-key`).
pub async fn sealed_webhooks(conn: &mut AnyConnection) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select user_id, webhook_sealed from notify_setting where webhook_sealed is not null
         order by user_id",
    )
    .fetch_all(conn)
    .await?)
}

/// Every sealed message, by notification id (`rowcol rotate-key`).
pub async fn sealed_messages(conn: &mut AnyConnection) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select notification_id, message_sealed from notification order by notification_id",
    )
    .fetch_all(conn)
    .await?)
}

/// Replace a sealed webhook address (`Some(user)`) or message with the same
/// value sealed under the current key, guarded on it being unchanged.
pub async fn reseal(
    tx: &mut Tx<'_>,
    webhook_of: Option<&str>,
    notification_id: Option<&str>,
    old: &str,
    new: &str,
) -> StoreResult<bool> {
    let done = match (webhook_of, notification_id) {
        (Some(user), _) => {
            sqlx::query(
                "update notify_setting set webhook_sealed = $3 where user_id = $1 and webhook_sealed = $2",
            )
            .bind(user)
            .bind(old)
            .bind(new)
            .execute(&mut **tx)
            .await?
        }
        (None, Some(id)) => {
            sqlx::query(
                "update notification set message_sealed = $3 where notification_id = $1 and message_sealed = $2",
            )
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&mut **tx)
            .await?
        }
        (None, None) => return Ok(false),
    };
    Ok(done.rows_affected() == 1)
}
