//! The one error type of the connect flows. Each variant is a page a person
//! reads (plain words, a way back); the cause of RowCol's own failures is
//! logged here, once, and never shown.

use super::page::page;
use app::error::AppError;
use app::model::Rail;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Display;

#[derive(Debug)]
pub enum ConnectError {
    /// 404 with a fixed message: no such rail, or no such client in the
    /// firm (never a hint which firm has it).
    NotFound(&'static str),
    /// 403: the signed-in person may not connect or disconnect.
    NotAdmin,
    /// 403: a viewer asked for a refresh.
    NotAdvisor,
    /// Not signed in, or the session's account is gone (its own status).
    Session(AppError),
    /// 400: the request or the provider's answer was refused; nothing was
    /// stored. `reason` is the audited code.
    Refused {
        reason: &'static str,
        message: String,
    },
    /// 503: no provider app is configured for this rail.
    NotConfigured(Rail),
    /// 502: a provider did not answer or could not do what was asked.
    Provider {
        title: &'static str,
        message: String,
        cause: String,
    },
    /// 500: RowCol's own failure while `doing` something.
    Internal { doing: &'static str, cause: String },
}

impl ConnectError {
    pub fn refused(reason: &'static str, message: impl Into<String>) -> Self {
        ConnectError::Refused {
            reason,
            message: message.into(),
        }
    }

    pub fn provider(title: &'static str, message: impl Into<String>, cause: impl Display) -> Self {
        ConnectError::Provider {
            title,
            message: message.into(),
            cause: cause.to_string(),
        }
    }

    pub fn internal(doing: &'static str, cause: impl Display) -> Self {
        ConnectError::Internal {
            doing,
            cause: cause.to_string(),
        }
    }
}

/// `result.doing("reading the flow")?`: a failure of RowCol's own becomes
/// a 500 that carries its cause to the log.
pub trait Doing<T> {
    fn doing(self, what: &'static str) -> Result<T, ConnectError>;
}

impl<T, E: Display> Doing<T> for Result<T, E> {
    fn doing(self, what: &'static str) -> Result<T, ConnectError> {
        self.map_err(|e| ConnectError::internal(what, e))
    }
}

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        match self {
            ConnectError::NotFound(message) => page(StatusCode::NOT_FOUND, "Not found", message),
            ConnectError::NotAdmin => page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only an admin of your firm can connect or disconnect rails.",
            ),
            ConnectError::NotAdvisor => page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only advisors and admins can refresh a client's data.",
            ),
            ConnectError::Session(e) => {
                let status =
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                page(status, "Not allowed", &e.to_string())
            }
            ConnectError::Refused { reason, message } => {
                tracing::info!(reason, "connect refused");
                page(StatusCode::BAD_REQUEST, "Not connected", &message)
            }
            ConnectError::NotConfigured(rail) => page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not configured",
                &format!(
                    "RowCol has no {} app configured.",
                    crate::connections::rail_name(rail)
                ),
            ),
            ConnectError::Provider {
                title,
                message,
                cause,
            } => {
                tracing::warn!(error = %cause, title, "connect: a provider failed");
                page(StatusCode::BAD_GATEWAY, title, &message)
            }
            ConnectError::Internal { doing, cause } => {
                tracing::error!(error = %cause, doing, "connect failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "RowCol could not finish this; nothing was changed. Try again shortly.",
                )
            }
        }
    }
}
