use crate::error::AppError;
use crate::model::SessionUser;
use leptos::prelude::*;

/// Sign in with email and password. On success the session id is rotated and
/// the browser is sent to the portfolio.
#[server(endpoint = "login")]
pub async fn login(email: String, password: String) -> Result<(), AppError> {
    use crate::ssr::auth::{respond, session, state, SESSION_USER_KEY};
    respond(
        async {
            let st = state()?;
            let email = email.trim().to_ascii_lowercase();
            // Throttled, bounded and audited (ssr/sign_in.rs).
            let uid = crate::ssr::sign_in::verify(&st, &email, password).await?;
            let session = session().await?;
            session
                .cycle_id()
                .await
                .map_err(|e| AppError::internal("the session store", e))?;
            session
                .insert(SESSION_USER_KEY, uid)
                .await
                .map_err(|e| AppError::internal("the session store", e))?;
            leptos_axum::redirect("/");
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::auth::{current_user, respond, session, state};
    respond(
        async {
            // Signing out twice, or without a session, is not an error.
            if let Ok(user) = current_user().await {
                crate::ssr::sign_in::signed_out(&state()?, user.user_id.as_str()).await?;
            }
            let session = session().await?;
            session
                .flush()
                .await
                .map_err(|e| AppError::internal("the session store", e))?;
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
                    waiting: {
                        let mut conn = st.db.read().await?;
                        crate::ssr::store::decisions::waiting_count(&mut conn, &u.firm_id).await?
                    },
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
