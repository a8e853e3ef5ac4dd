//! Sending what RowCol tells people: email over SMTP and Slack-compatible
//! webhook posts. What to send, to whom and when is the jobs'
//! (`jobs/notify.rs`); here is only how, and how a failure is read.

pub mod mailer;
pub mod webhook;

/// How a send failed, as the at-most-once rule needs it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Nothing went (no connection, or refused with a "try later"): try
    /// again on the schedule.
    #[error("{0}")]
    Retry(String),
    /// Refused for good (no such mailbox, a webhook that is gone).
    #[error("{0}")]
    Permanent(String),
    /// The connection broke after the message was handed over: it may have
    /// arrived. It is not sent again.
    #[error("{0}")]
    Unknown(String),
}
