use crate::error::AppError;
use crate::model::SessionUser;
use leptos::prelude::*;

/// Where a sign-in may send the browser: a path of this site (`/…`, never
/// `//host` or a scheme, so a link cannot bounce a person elsewhere), else
/// the portfolio.
pub fn local_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !next.starts_with("/login")
        && !next.starts_with("/api/");
    if ok {
        next
    } else {
        "/"
    }
}

/// Sign in with email and password, and the code of the person's
/// authenticator (or a recovery code) when they use two-step sign-in. On
/// success the session id is rotated and the browser is sent to the page
/// the person asked for (`next`, a local path) or to the portfolio.
#[server(endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    #[server(default)] next: String,
    #[server(default)] code: String,
) -> Result<(), AppError> {
    use crate::ssr::auth::{respond, session, state, SESSION_USER_KEY};
    respond(
        async {
            let st = state()?;
            let email = email.trim().to_ascii_lowercase();
            // Throttled, bounded and audited (ssr/sign_in.rs).
            let uid = crate::ssr::sign_in::verify(&st, &email, password, code).await?;
            let session = session().await?;
            session
                .cycle_id()
                .await
                .map_err(|e| AppError::internal("the session store", e))?;
            session
                .insert(SESSION_USER_KEY, uid)
                .await
                .map_err(|e| AppError::internal("the session store", e))?;
            leptos_axum::redirect(local_next(&next));
            Ok(())
        }
        .await,
    )
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::auth::{respond, session, state};
    respond(
        async {
            // Signing out twice, or without a session, is not an error.
            if let Ok(user) = crate::ssr::auth::current_user_enrolling().await {
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
    use crate::ssr::auth::{respond, state};
    respond(
        async {
            let st = state()?;
            match crate::ssr::auth::current_user_enrolling().await {
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

#[cfg(test)]
mod tests {
    use super::local_next;

    #[test]
    fn a_sign_in_goes_back_only_to_a_page_of_this_site() {
        assert_eq!(
            local_next("/hygiene?state=resolved"),
            "/hygiene?state=resolved"
        );
        assert_eq!(local_next("/clients/cl_1"), "/clients/cl_1");
        for away in [
            "",
            "https://evil.test/",
            "//evil.test/x",
            "/\\evil.test",
            "javascript:alert(1)",
            "/login?next=/x",
            "/api/logout",
            "/a\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(local_next(away), "/", "{away:?}");
        }
    }
}
