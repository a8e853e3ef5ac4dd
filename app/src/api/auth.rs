use crate::error::AppError;
use crate::model::SessionUser;
use leptos::prelude::*;

/// Sign in with email and password. On success the session id is rotated and
/// the browser is sent to the portfolio.
#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::ssr::auth::{respond, session, state, SESSION_USER_KEY};
    use crate::ssr::crypto::verify_password;
    respond(
        async {
            let st = state()?;
            let email = email.trim().to_ascii_lowercase();
            let mut conn = st.db.acquire().await?;
            let row = crate::ssr::store::users::credentials(&mut conn, &email).await?;
            drop(conn);
            // Hash even for unknown users so timing does not reveal which
            // emails exist.
            let (uid, phc) = match row {
                Some((uid, phc)) => (Some(uid), phc),
                None => (None, DUMMY_HASH.to_owned()),
            };
            let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
                .await
                .unwrap_or(false);
            let uid = match (uid, ok) {
                (Some(uid), true) => uid,
                _ => {
                    tracing::info!(email = %email, "sign-in refused");
                    return Err(AppError::BadCredentials);
                }
            };
            let session = session().await?;
            session.cycle_id().await.map_err(|_| AppError::Internal)?;
            session
                .insert(SESSION_USER_KEY, uid)
                .await
                .map_err(|_| AppError::Internal)?;
            leptos_axum::redirect("/");
            Ok(())
        }
        .await,
    )
}

/// An argon2id hash of a random string, verified against when the email is
/// unknown.
#[cfg(feature = "ssr")]
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2h2x0bYtjYbHFYJcpA+9VzHA1ubyHzMTJ+M02lxbfbE";

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::auth::{respond, session};
    respond(
        async {
            let session = session().await?;
            session.flush().await.map_err(|_| AppError::Internal)?;
            leptos_axum::redirect("/login");
            Ok(())
        }
        .await,
    )
}

/// The signed-in user, or `None`.
#[server(endpoint = "me")]
pub async fn me() -> Result<Option<SessionUser>, AppError> {
    use crate::ssr::auth::{current_user, respond, state};
    respond(
        async {
            let st = state()?;
            match current_user().await {
                Ok(u) => Ok(Some(SessionUser {
                    email: u.email,
                    name: u.name,
                    role: u.role,
                    firm_name: u.firm_name,
                    sandbox: st.sandbox.is_some(),
                    today: st.clock.today(),
                })),
                Err(AppError::Unauthenticated) => Ok(None),
                Err(e) => Err(e),
            }
        }
        .await,
    )
}
