//! The one error type of the server-function boundary. What the browser sees
//! is a category and a safe message; internals are logged on the server and
//! cross the wire only as the opaque `Internal`.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in.")]
    Unauthenticated,
    #[error("Wrong email or password.")]
    BadCredentials,
    /// The password was right; the second factor is missing or wrong
    /// (401, saying which).
    #[error("{0}")]
    SecondFactor(String),
    #[error("You are not allowed to do that.")]
    Forbidden,
    #[error("Not found.")]
    NotFound,
    /// Refused for a reason the person should read (403): an advisor's
    /// override, the first approver approving again.
    #[error("{0}")]
    Denied(String),
    /// Well-formed but not acceptable (422): a policy value out of range
    /// (the message names the field), an override without a reason.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Conflict(String),
    /// A guardrail refused the action; the message gives the numbers.
    #[error("Guardrail failed: {0}")]
    Guardrail(String),
    /// The bank could not be read, so a fresh-cash check cannot pass.
    #[error("The bank balance could not be refreshed: {0}")]
    CashUnavailable(String),
    /// Too many failed sign-ins (or sign-ins at once): answered 429 with
    /// `Retry-After`.
    #[error("Too many sign-in attempts. Try again in {} minute(s).", .retry_after_secs.div_ceil(60))]
    Throttled { retry_after_secs: u64 },
    #[error("Something went wrong on our side. It has been logged.")]
    Internal,
    /// Transport or encoding failures from the server-fn machinery.
    #[error("{0}")]
    Transport(String),
}

impl AppError {
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials | AppError::SecondFactor(_) => 401,
            AppError::Forbidden | AppError::Denied(_) => 403,
            AppError::Unprocessable(_) => 422,
            AppError::NotFound => 404,
            AppError::Validation(_) | AppError::Transport(_) => 400,
            AppError::Conflict(_) => 409,
            AppError::Guardrail(_) => 422,
            AppError::CashUnavailable(_) => 503,
            AppError::Throttled { .. } => 429,
            AppError::Internal => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request could not be read as the function's arguments:
            // the caller's mistake (400), said plainly. serde's wording
            // ("error deserializing server function arguments: …") is not
            // for people; the one useful part, a missing field's name, is
            // kept.
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::MissingArg(detail) => {
                AppError::Validation(match missing_field(&detail) {
                    Some(field) => format!("The request is missing the field “{field}”."),
                    None => "The request could not be read: a field is missing or is not \
                             in the expected form."
                        .into(),
                })
            }
            // On the server, a body that is not even text (bytes that are
            // not UTF-8) fails here; in the browser this means an answer
            // could not be read, which stays a transport error.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Deserialization(_) => AppError::Validation(
                "The request could not be read: it is not a form of text fields.".into(),
            ),
            other => AppError::Transport(other.to_string()),
        }
    }
}

/// `email` from serde's "missing field `email`" (a field name is short and
/// plain; anything else is not echoed).
fn missing_field(detail: &str) -> Option<&str> {
    let rest = detail.split("missing field `").nth(1)?;
    let field = rest.split('`').next()?;
    let plain = !field.is_empty()
        && field.len() <= 64
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '[' | ']'));
    plain.then_some(field)
}

#[cfg(feature = "ssr")]
impl AppError {
    /// A failure of RowCol's own: its cause is logged with what was being
    /// done, and the browser gets only the opaque `Internal`.
    pub fn internal(doing: &str, cause: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %cause, doing, "internal error");
        AppError::Internal
    }
}

/// The data layer's errors become what a browser may see here, at the
/// server function's edge, and nowhere else.
#[cfg(feature = "ssr")]
impl From<crate::ssr::store::StoreError> for AppError {
    fn from(e: crate::ssr::store::StoreError) -> Self {
        use crate::ssr::store::StoreError;
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(msg) => {
                let mut m = msg.to_owned();
                if let Some(first) = m.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                AppError::Conflict(format!("{m}."))
            }
            other => {
                tracing::error!(error = %other, "database error");
                AppError::Internal
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl From<crate::model::MoneyError> for AppError {
    fn from(e: crate::model::MoneyError) -> Self {
        AppError::Validation(e.to_string())
    }
}
