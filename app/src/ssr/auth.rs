//! Who is calling, and may they? Every server function starts here.
//! Authorization *returns an error*; it never redirects and carries on.

use super::app_state::AppState;
use crate::error::AppError;
use crate::model::{FirmId, Role, UserId};
use leptos::prelude::*;
use tower_sessions::Session;

pub const SESSION_USER_KEY: &str = "uid";

/// The signed-in user. Every query a server function makes is scoped to
/// `firm_id` from here, never to an id the browser sent.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user_id: UserId,
    pub firm_id: FirmId,
    pub firm_name: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Whether the person signs in with a second factor.
    pub totp_on: bool,
}

impl CurrentUser {
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from context");
        AppError::Internal
    })
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        AppError::Internal
    })
}

/// The signed-in user, or `Unauthenticated`. In live mode an admin who has
/// not turned on the second factor may do nothing else first (refused with
/// `Denied`, saying where).
pub async fn current_user() -> Result<CurrentUser, AppError> {
    let user = current_user_enrolling().await?;
    let st = state()?;
    if st.live {
        admin_has_second_factor(&user)?;
    }
    Ok(user)
}

/// Live mode: admins must use the second factor.
pub fn admin_has_second_factor(user: &CurrentUser) -> Result<(), AppError> {
    if user.role == Role::Admin && !user.totp_on {
        return Err(AppError::Denied(
            "Admins must use two-step sign-in: turn it on at /account first.".into(),
        ));
    }
    Ok(())
}

/// The signed-in user without the second-factor rule: for what a person
/// needs to turn it on (their account, signing out, who they are).
pub async fn current_user_enrolling() -> Result<CurrentUser, AppError> {
    let session = session().await?;
    let st = state()?;
    user_of_session(&session, &st.db).await
}

/// Whether this person may approve payments now: when the firm asks
/// approvers for the second factor, only with it on.
pub async fn may_approve(user: &CurrentUser) -> Result<(), AppError> {
    user.require(Role::Advisor)?;
    if user.totp_on {
        return Ok(());
    }
    let st = state()?;
    let mut conn = st.db.read().await?;
    if crate::ssr::store::firms::totp_for_approvers(&mut conn, user.firm_id.as_str()).await? {
        return Err(AppError::Denied(
            "Your firm asks approvers to use two-step sign-in: turn it on at /account first."
                .into(),
        ));
    }
    Ok(())
}

/// The user signed in on `session` (for plain axum handlers, which have no
/// Leptos context), or `Unauthenticated`.
pub async fn user_of_session(
    session: &Session,
    db: &crate::ssr::store::Db,
) -> Result<CurrentUser, AppError> {
    let uid: Option<String> = session.get(SESSION_USER_KEY).await.map_err(|e| {
        tracing::error!(error = %e, "session read failed");
        AppError::Internal
    })?;
    let uid = uid.ok_or(AppError::Unauthenticated)?;
    let mut conn = db.read().await?;
    let row = crate::ssr::store::users::session_user(&mut conn, &uid)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    let bad = |e| AppError::internal("a stored user's id does not parse", e);
    Ok(CurrentUser {
        user_id: UserId::parse(&row.user_id).map_err(bad)?,
        firm_id: FirmId::parse(&row.firm_id).map_err(bad)?,
        firm_name: row.firm_name,
        email: row.email,
        name: row.name,
        role: Role::parse(&row.role).ok_or(AppError::Internal)?,
        totp_on: row.totp_enabled_at.is_some(),
    })
}

/// Set the HTTP status of a server-function error response, so scripts and
/// tests see 401/403/404/422 rather than a blanket 500. A plain HTML form
/// post (JavaScript off) keeps the framework's redirect back to the page,
/// which carries the error in its URL for the page to show.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        let form_post = use_context::<axum::http::request::Parts>()
            .and_then(|p| {
                p.headers
                    .get(axum::http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.contains("text/html"))
            })
            .unwrap_or(false);
        if form_post {
            return result;
        }
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
            opts.set_status(
                axum::http::StatusCode::from_u16(e.status())
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
            );
            if let AppError::Throttled { retry_after_secs } = e {
                opts.insert_header(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after_secs),
                );
            }
        }
    }
    result
}
