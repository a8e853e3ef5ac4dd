//! Queue a message for sending: sealed (bound to its own id), stored and
//! its sending job enqueued in the caller's transaction, so the message
//! exists exactly when what it tells of does. The server's `deliver` job
//! sends it.

use super::crypto::Sealer;
use super::job_kinds::Job;
use super::store::notify::{self, NewNotification};
use super::store::{job_queue, StoreResult, Tx};
use crate::domain::notify::{Channel, Message};
use chrono::{DateTime, Utc};

/// One message to one recipient over one channel.
pub struct Queue<'a> {
    pub firm_id: &'a str,
    /// What it is about: with the recipient and the channel, its
    /// at-most-once key.
    pub subject_key: &'a str,
    /// The user id, or the address of someone not yet a user.
    pub recipient: &'a str,
    pub user_id: Option<&'a str>,
    pub channel: Channel,
    pub to_address: Option<&'a str>,
    pub message: &'a Message,
    pub at: DateTime<Utc>,
}

/// Store the message and enqueue its sending; `false` when the same
/// subject already went (or is going) to that recipient over that channel.
pub async fn queue(tx: &mut Tx<'_>, sealer: &Sealer, q: Queue<'_>) -> StoreResult<bool> {
    let id = notify::new_id();
    let text = serde_json::to_string(q.message).map_err(super::store::corrupt)?;
    let stored = notify::insert(
        tx,
        &NewNotification {
            notification_id: &id,
            firm_id: q.firm_id,
            subject_key: q.subject_key,
            recipient: q.recipient,
            user_id: q.user_id,
            channel: q.channel,
            to_address: q.to_address,
            message_sealed: &sealer.seal(&text, &notify::message_aad(&id)),
            at: q.at,
        },
    )
    .await?;
    if stored {
        job_queue::enqueue(
            tx,
            &Job::Deliver {
                notification_id: id,
            },
            q.at,
            q.at,
        )
        .await?;
    }
    Ok(stored)
}
