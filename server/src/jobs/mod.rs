//! Background work: the runner claims due jobs from the database and
//! dispatches them; each kind lives in its own file.

pub mod annotate;
pub mod evidence;
pub mod inbox;
pub mod notify;
pub mod plaid_events;
pub mod qbo_events;
pub mod release;
pub mod runner;
pub mod subscriptions;
pub mod sync;
pub mod verify;

use crate::rails::RailError;
use std::time::Duration;

/// How a job attempt ended, when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (rate limits, 5xx, evidence not there yet).
    #[error("{code}: {message}")]
    Retry {
        code: &'static str,
        message: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help.
    #[error("{code}: {message}")]
    Fatal { code: &'static str, message: String },
}

impl JobError {
    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        JobError::Fatal {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            JobError::Retry { code, .. } | JobError::Fatal { code, .. } => code,
        }
    }

    pub fn retry(code: &'static str, message: impl Into<String>) -> Self {
        JobError::Retry {
            code,
            message: message.into(),
            after: None,
        }
    }
}

impl From<RailError> for JobError {
    fn from(e: RailError) -> Self {
        let code = e.code();
        match e {
            RailError::RateLimited { retry_after } => JobError::Retry {
                code,
                message: "rate limited".into(),
                after: retry_after,
            },
            other if other.is_retryable() => JobError::retry(code, other.to_string()),
            // The rail refused the token and did nothing: by the next
            // attempt it is refreshed (sweep, or a call through
            // `connections::with_auth`) or the connection shows "needs
            // reconnect" and an admin fixes it.
            RailError::Unauthorized(m) => JobError::retry(code, m),
            other => JobError::fatal(code, other.to_string()),
        }
    }
}

impl From<app::ssr::store::StoreError> for JobError {
    fn from(e: app::ssr::store::StoreError) -> Self {
        use app::ssr::store::StoreError;
        match e {
            StoreError::NotFound => JobError::fatal("not_found", "a row the job needs vanished"),
            StoreError::Corrupt(what) => JobError::fatal("corrupt", what),
            // Lost a race (state guard, unique key) or a database hiccup:
            // the next attempt sees the new state.
            StoreError::Conflict(what) => JobError::retry("conflict", what),
            StoreError::Db(d) => JobError::retry("database", d.to_string()),
        }
    }
}

impl From<crate::connections::ConnectionError> for JobError {
    fn from(e: crate::connections::ConnectionError) -> Self {
        use crate::connections::ConnectionError as C;
        match e {
            C::Store(d) => d.into(),
            // Retried on the schedule: a refresh that could not run now, or
            // a connection an admin may reconnect before the schedule ends.
            C::RefreshUnavailable(_) | C::NeedsReconnect { .. } => {
                JobError::retry(e.code(), e.to_string())
            }
            other => JobError::fatal(other.code(), other.to_string()),
        }
    }
}
