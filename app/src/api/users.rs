//! People in the console (issue #18 §3): admins invite people by a
//! one-time link (72 hours), change roles, deactivate people (their
//! sessions end at once) and issue password-reset links; everyone changes
//! their own password. The firm's last active admin cannot be demoted or
//! deactivated. Every change is audited; every call is scoped to the
//! signed-in person's firm.

use crate::error::AppError;
use crate::model::{LinkInfo, LinkIssued, TotpEnrolment, UsersView};
use leptos::prelude::*;

/// How long an invitation or reset link can be used.
pub const LINK_HOURS: i64 = 72;
/// The shortest password accepted (the CLI's rule too).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest: a password is hashed, and hashing is paid per byte.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The firm's people and open invitations (admins).
#[server(endpoint = "users")]
pub async fn get_users() -> Result<UsersView, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::list().await)
}

/// Invite a person by email with a role (admins): a one-time link, valid
/// for [`LINK_HOURS`], shown once.
#[server(endpoint = "users/invite")]
pub async fn invite_user(email: String, role: String) -> Result<LinkIssued, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::invite(email, role).await)
}

/// Give a person of the firm another role (admins).
#[server(endpoint = "users/role")]
pub async fn change_role(user_id: String, role: String) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::change_role(user_id, role).await)
}

/// Deactivate a person of the firm (admins): their sessions end at once.
#[server(endpoint = "users/deactivate")]
pub async fn deactivate_user(user_id: String) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::deactivate(user_id).await)
}

/// A one-time password-reset link for a person of the firm (admins).
#[server(endpoint = "users/reset_link")]
pub async fn reset_link(user_id: String) -> Result<LinkIssued, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::reset_link(user_id).await)
}

/// Turn off a person's two-step sign-in (admins, for someone else: a lost
/// phone). They sign in with their password and enrol again where the
/// firm or live mode asks it of them.
#[server(endpoint = "users/totp_reset")]
pub async fn reset_totp(user_id: String) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::reset_totp(user_id).await)
}

/// What a one-time link is for (no sign-in needed; nothing secret).
#[server(endpoint = "users/link")]
pub async fn get_link(token: String) -> Result<LinkInfo, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::link_info(token).await)
}

/// Use a one-time link: accept an invitation (name and password) or set a
/// new password. Then on to sign in.
#[server(endpoint = "users/accept")]
pub async fn accept_link(
    token: String,
    #[server(default)] name: String,
    password: String,
) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::accept(token, name, password).await)
}

/// Change one's own password (the current one first).
#[server(endpoint = "users/password")]
pub async fn change_password(current: String, new_password: String) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::change_password(current, new_password).await)
}

/// Start turning on two-step sign-in: a new secret, shown once as a QR
/// code (and as text) to add to an authenticator app.
#[server(endpoint = "totp/start")]
pub async fn totp_start() -> Result<TotpEnrolment, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::totp_start().await)
}

/// The enrolment under way (a secret made, not yet confirmed), shown again
/// to its person: how the page shows it after a plain form post.
#[server(endpoint = "totp/pending")]
pub async fn totp_pending() -> Result<Option<TotpEnrolment>, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::totp_pending().await)
}

/// The recovery codes just made, once: they wait (sealed) in the session
/// between the confirmation and the page that shows them.
#[server(endpoint = "totp/codes")]
pub async fn totp_fresh_codes() -> Result<Vec<String>, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::totp_fresh_codes().await)
}

/// Finish turning it on with a code from the app: answers the recovery
/// codes, shown this once (each works once, instead of a code).
#[server(endpoint = "totp/confirm")]
pub async fn totp_confirm(code: String) -> Result<Vec<String>, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::totp_confirm(code).await)
}

/// The firm's setting (admins): everyone who approves payments must use
/// two-step sign-in.
#[server(endpoint = "users/totp_for_approvers")]
pub async fn set_totp_for_approvers(#[server(default)] on: String) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::set_totp_for_approvers(!on.is_empty() && on != "false").await)
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::{LINK_HOURS, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
    use crate::domain::notify::{Channel, Message};
    use crate::error::AppError;
    use crate::model::{
        InviteView, LinkInfo, LinkIssued, Role, TotpEnrolment, UserView, UsersView,
    };
    use crate::ssr::auth::{current_user, state, CurrentUser};
    use crate::ssr::notices::{self, Queue};
    use crate::ssr::store::audit::{self, Entry};
    use crate::ssr::store::notify;
    use crate::ssr::store::user_links::{self, NewLink, Purpose, Unusable};
    use crate::ssr::store::users::{self, NewUser};
    use crate::ssr::store::{commit, firms, from_ms, StoreError};
    use chrono::Duration;
    use serde_json::json;

    fn role_of(s: &str) -> Result<Role, AppError> {
        Role::parse(s.trim())
            .ok_or_else(|| AppError::Validation("Role must be admin, advisor or viewer.".into()))
    }

    fn stored_role(s: &str) -> Result<Role, AppError> {
        Role::parse(s).ok_or(AppError::Internal)
    }

    /// A new random token: 256 bits from the OS's generator (two v4
    /// UUIDs' random bits), hex.
    fn new_token() -> String {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    }

    /// Back to the people page, the link shown there (with or without
    /// JavaScript: the answer of a plain form post is otherwise lost). The
    /// token is in the admin's own address bar once; it works once.
    fn show_on_people_page(issued: &LinkIssued) {
        let enc: String = issued
            .path
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'/' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        leptos_axum::redirect(&format!("/users?link={enc}"));
    }

    fn check_password(p: &str) -> Result<(), AppError> {
        let n = p.chars().count();
        if n < MIN_PASSWORD_CHARS {
            return Err(AppError::Validation(format!(
                "The password must be at least {MIN_PASSWORD_CHARS} characters."
            )));
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(AppError::Validation(format!(
                "The password must be at most {MAX_PASSWORD_CHARS} characters."
            )));
        }
        Ok(())
    }

    /// Argon2id off the async threads.
    async fn hash(password: String) -> Result<String, AppError> {
        tokio::task::spawn_blocking(move || crate::ssr::crypto::hash_password(&password))
            .await
            .map_err(|e| AppError::internal("the hashing task", e))?
            .map_err(|e| AppError::internal("hashing a password", e))
    }

    async fn admin() -> Result<CurrentUser, AppError> {
        let user = current_user().await?;
        user.require(Role::Admin)?;
        Ok(user)
    }

    pub async fn list() -> Result<UsersView, AppError> {
        let me = admin().await?;
        let st = state()?;
        let now = st.clock.now();
        let mut conn = st.db.read().await?;
        let users = users::list(&mut conn, &me.firm_id)
            .await?
            .into_iter()
            .map(|u| {
                Ok(UserView {
                    is_me: u.user_id == me.user_id.as_str(),
                    totp_on: u.totp_enabled_at.is_some(),
                    role: stored_role(&u.role)?,
                    active: u.deactivated_at.is_none(),
                    created_at: from_ms(u.created_at),
                    user_id: u.user_id,
                    email: u.email,
                    name: u.name,
                })
            })
            .collect::<Result<_, AppError>>()?;
        let invites = user_links::pending_invites(&mut conn, &me.firm_id, now)
            .await?
            .into_iter()
            .map(|l| {
                Ok(InviteView {
                    role: stored_role(l.role.as_deref().unwrap_or(""))?,
                    email: l.email,
                    invited_by: l.created_by,
                    expires_at: from_ms(l.expires_at),
                })
            })
            .collect::<Result<_, AppError>>()?;
        let totp_for_approvers = firms::totp_for_approvers(&mut conn, me.firm_id.as_str()).await?;
        Ok(UsersView {
            users,
            invites,
            totp_for_approvers,
        })
    }

    pub async fn invite(email: String, role: String) -> Result<LinkIssued, AppError> {
        let me = admin().await?;
        let role = role_of(&role)?;
        let email = email.trim().to_ascii_lowercase();
        let plausible = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(AppError::Validation(
                "That does not look like an email address.".into(),
            ));
        }
        let st = state()?;
        {
            let mut conn = st.db.acquire().await?;
            if users::email_taken(&mut conn, &email).await? {
                return Err(AppError::Conflict(
                    "Someone already has an account with that email.".into(),
                ));
            }
        }
        issue_link(
            &me,
            Link {
                purpose: Purpose::Invite,
                email: &email,
                role: Some(role),
                user_id: None,
                action: "user.invited",
                detail: json!({ "role": role.as_str() }),
                words: format!("Invitation for {email} as {}", role.as_str()),
            },
        )
        .await
    }

    /// The last-admin rule: the firm must keep an active admin.
    async fn keeps_an_admin(
        tx: &mut crate::ssr::store::Tx<'_>,
        me: &CurrentUser,
    ) -> Result<(), AppError> {
        if users::active_admins(tx, &me.firm_id).await? < 1 {
            return Err(AppError::Conflict(
                "The firm must keep at least one active admin: make someone else an admin first."
                    .into(),
            ));
        }
        Ok(())
    }

    pub async fn change_role(user_id: String, role: String) -> Result<String, AppError> {
        let me = admin().await?;
        let to = role_of(&role)?;
        let st = state()?;
        let now = st.clock.now();
        let target = {
            let mut conn = st.db.acquire().await?;
            users::of_firm(&mut conn, &me.firm_id, &user_id).await?
        };
        if target.deactivated_at.is_some() {
            return Err(AppError::Conflict("This person is deactivated.".into()));
        }
        let from = stored_role(&target.role)?;
        if from == to {
            return Ok(format!("{} is already {}.", target.email, to.as_str()));
        }
        let mut tx = st.db.begin().await?;
        users::set_role(&mut tx, &me.firm_id, &user_id, from, to).await?;
        keeps_an_admin(&mut tx, &me).await?;
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "user.role_changed",
                subject: &target.email,
                detail: json!({ "user_id": user_id, "old": from.as_str(), "new": to.as_str() }),
            },
        )
        .await?;
        commit(tx).await?;
        Ok(format!("{} is now {}.", target.email, to.as_str()))
    }

    pub async fn deactivate(user_id: String) -> Result<String, AppError> {
        let me = admin().await?;
        let st = state()?;
        let now = st.clock.now();
        let target = {
            let mut conn = st.db.acquire().await?;
            users::of_firm(&mut conn, &me.firm_id, &user_id).await?
        };
        let mut tx = st.db.begin().await?;
        users::deactivate(&mut tx, &me.firm_id, &user_id, now).await?;
        keeps_an_admin(&mut tx, &me).await?;
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "user.deactivated",
                subject: &target.email,
                detail: json!({ "user_id": user_id, "role": target.role }),
            },
        )
        .await?;
        commit(tx).await?;
        Ok(format!(
            "{} is deactivated: signed out everywhere, and cannot sign in again.",
            target.email
        ))
    }

    pub async fn reset_link(user_id: String) -> Result<LinkIssued, AppError> {
        let me = admin().await?;
        let st = state()?;
        let target = {
            let mut conn = st.db.acquire().await?;
            users::of_firm(&mut conn, &me.firm_id, &user_id).await?
        };
        if target.deactivated_at.is_some() {
            return Err(AppError::Conflict("This person is deactivated.".into()));
        }
        issue_link(
            &me,
            Link {
                purpose: Purpose::Reset,
                email: &target.email,
                role: None,
                user_id: Some(&user_id),
                action: "user.reset_link_issued",
                detail: json!({ "user_id": user_id }),
                words: format!("Password reset for {}", target.email),
            },
        )
        .await
    }

    pub async fn reset_totp(user_id: String) -> Result<String, AppError> {
        let me = admin().await?;
        if user_id == me.user_id.as_str() {
            return Err(AppError::Conflict(
                "You cannot reset your own two-step sign-in: use a recovery code, or ask another admin."
                    .into(),
            ));
        }
        let st = state()?;
        let now = st.clock.now();
        let target = {
            let mut conn = st.db.acquire().await?;
            users::of_firm(&mut conn, &me.firm_id, &user_id).await?
        };
        let mut tx = st.db.begin().await?;
        if !users::clear_totp(&mut tx, &me.firm_id, &user_id).await? {
            return Err(AppError::Conflict(format!(
                "{} does not use two-step sign-in.",
                target.email
            )));
        }
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "user.totp_reset",
                subject: &target.email,
                detail: json!({ "user_id": user_id }),
            },
        )
        .await?;
        commit(tx).await?;
        Ok(format!(
            "Two-step sign-in is off for {}. They sign in with their password and set it up again.",
            target.email
        ))
    }

    /// A one-time link to hand out.
    struct Link<'a> {
        purpose: Purpose,
        email: &'a str,
        role: Option<Role>,
        user_id: Option<&'a str>,
        /// The audit entry's action and detail (the expiry is added).
        action: &'static str,
        detail: serde_json::Value,
        /// What the link is, for the admin ("Invitation for …").
        words: String,
    }

    /// Make a one-time link, audit it, and, when email is configured, send
    /// it to its person (the message is queued in the same transaction,
    /// sealed, as the link is a secret). The admin sees it either way.
    async fn issue_link(me: &CurrentUser, link: Link<'_>) -> Result<LinkIssued, AppError> {
        let st = state()?;
        let now = st.clock.now();
        let token = new_token();
        let expires = now + Duration::hours(LINK_HOURS);
        let mut tx = st.db.begin().await?;
        user_links::create(
            &mut tx,
            &NewLink {
                token: &token,
                firm_id: &me.firm_id,
                purpose: link.purpose,
                email: link.email,
                role: link.role,
                user_id: link.user_id,
                created_by: &me.email,
                at: now,
                expires,
            },
        )
        .await?;
        let mut detail = link.detail;
        detail["expires_at"] = json!(expires.to_rfc3339());
        detail["emailed"] = json!(st.mail);
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: link.action,
                subject: link.email,
                detail,
            },
        )
        .await?;
        let path = format!("/welcome?token={token}");
        if st.mail {
            let message = link_message(
                me,
                &link.purpose,
                link.role,
                &format!("{}{path}", st.public_url),
            );
            notices::queue(
                &mut tx,
                &st.sealer,
                Queue {
                    firm_id: me.firm_id.as_str(),
                    subject_key: &format!("link:{}", notify::new_id()),
                    recipient: link.email,
                    user_id: link.user_id,
                    channel: Channel::Email,
                    to_address: Some(link.email),
                    message: &message,
                    at: now,
                },
            )
            .await?;
        }
        commit(tx).await?;
        let issued = LinkIssued {
            path,
            expires_at: expires,
            message: if st.mail {
                format!(
                    "{}: emailed to {}. You can also send them this link. It works once, for {LINK_HOURS} hours.",
                    link.words, link.email
                )
            } else {
                format!(
                    "{}: send them this link. It works once, for {LINK_HOURS} hours.",
                    link.words
                )
            },
        };
        show_on_people_page(&issued);
        Ok(issued)
    }

    /// The email carrying a link, in plain words.
    fn link_message(me: &CurrentUser, purpose: &Purpose, role: Option<Role>, url: &str) -> Message {
        match (purpose, role) {
            (Purpose::Invite, Some(role)) => Message {
                subject: format!("You are invited to {} on RowCol", me.firm_name),
                text: format!(
                    "{} ({}) invited you to join {} on RowCol as {}.\n\n\
                     Accept the invitation here (the link works once, for {LINK_HOURS} hours):\n{url}\n\n\
                     If you did not expect this, you can ignore this message.",
                    me.name,
                    me.email,
                    me.firm_name,
                    role.as_str()
                ),
            },
            _ => Message {
                subject: "Set a new RowCol password".into(),
                text: format!(
                    "{} ({}) issued a password reset for your RowCol account at {}.\n\n\
                     Choose a new password here (the link works once, for {LINK_HOURS} hours):\n{url}\n\n\
                     If you did not ask for this, tell your firm's admin.",
                    me.name, me.email, me.firm_name
                ),
            },
        }
    }

    fn unusable(why: Unusable) -> AppError {
        match why {
            Unusable::Unknown => AppError::NotFound,
            Unusable::Used => AppError::Conflict(
                "This link was used already. Ask your firm's admin for a new one.".into(),
            ),
            Unusable::Expired => AppError::Conflict(
                "This link has expired. Ask your firm's admin for a new one.".into(),
            ),
        }
    }

    pub async fn link_info(token: String) -> Result<LinkInfo, AppError> {
        let st = state()?;
        let now = st.clock.now();
        let mut conn = st.db.acquire().await?;
        let link = user_links::usable(&mut conn, token.trim(), now)
            .await?
            .map_err(unusable)?;
        Ok(LinkInfo {
            firm_name: firms::name_of(&mut conn, &link.firm_id).await?,
            role: link.role.as_deref().and_then(Role::parse),
            purpose: link.purpose,
            email: link.email,
        })
    }

    pub async fn accept(token: String, name: String, password: String) -> Result<String, AppError> {
        let st = state()?;
        let now = st.clock.now();
        let token = token.trim().to_owned();
        let link = {
            let mut conn = st.db.acquire().await?;
            user_links::usable(&mut conn, &token, now)
                .await?
                .map_err(unusable)?
        };
        check_password(&password)?;
        let firm = crate::model::FirmId::parse(&link.firm_id)
            .map_err(|e| AppError::internal("a stored firm id does not parse", e))?;
        let name = name.trim();
        if link.purpose == "invite" && (name.is_empty() || name.chars().count() > 200) {
            return Err(AppError::Validation(
                "Your name, please (at most 200 characters).".into(),
            ));
        }
        let password_hash = hash(password).await?;
        let mut tx = st.db.begin().await?;
        user_links::take(&mut tx, &token, now).await?;
        let (action, message) = if link.purpose == "invite" {
            let role = stored_role(link.role.as_deref().unwrap_or(""))?;
            users::create(
                &mut tx,
                &NewUser {
                    firm: &firm,
                    email: &link.email,
                    name,
                    role,
                    password_hash: &password_hash,
                },
                now,
            )
            .await
            .map_err(|e| match e {
                StoreError::Db(ref d) if crate::ssr::store::is_unique_violation(d) => {
                    AppError::Conflict("Someone already has an account with that email.".into())
                }
                other => other.into(),
            })?;
            ("user.joined", "Welcome: your account is ready. Sign in.")
        } else {
            let uid = link.user_id.as_deref().ok_or(AppError::Internal)?;
            users::set_password(&mut tx, uid, &password_hash).await?;
            (
                "user.password_reset",
                "Your password is changed. Sign in with it.",
            )
        };
        audit::record(
            &mut tx,
            &firm,
            now,
            Entry {
                actor: &link.email,
                action,
                subject: &link.email,
                detail: json!({ "role": link.role, "link_by": link.created_by }),
            },
        )
        .await?;
        commit(tx).await?;
        leptos_axum::redirect("/login?welcome=1");
        Ok(message.into())
    }

    pub async fn change_password(
        current: String,
        new_password: String,
    ) -> Result<String, AppError> {
        let me = current_user().await?;
        check_password(&new_password)?;
        let st = state()?;
        let now = st.clock.now();
        let stored = {
            let mut conn = st.db.acquire().await?;
            users::password_hash(&mut conn, me.user_id.as_str()).await?
        };
        let ok = tokio::task::spawn_blocking(move || {
            crate::ssr::crypto::verify_password(&current, &stored)
        })
        .await
        .map_err(|e| AppError::internal("the hashing task", e))?;
        if !ok {
            return Err(AppError::Validation(
                "The current password is not right.".into(),
            ));
        }
        let password_hash = hash(new_password).await?;
        let mut tx = st.db.begin().await?;
        users::set_password(&mut tx, me.user_id.as_str(), &password_hash).await?;
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "user.password_changed",
                subject: &me.email,
                detail: json!({}),
            },
        )
        .await?;
        commit(tx).await?;
        Ok("Your password is changed.".into())
    }

    pub async fn totp_start() -> Result<TotpEnrolment, AppError> {
        use crate::ssr::totp;
        let me = crate::ssr::auth::current_user_enrolling().await?;
        let st = state()?;
        let secret = totp::new_secret();
        let t = totp::totp(&secret, &me.email).ok_or(AppError::Internal)?;
        let enrolment = totp::enrolment(&t)?;
        let sealed = totp::seal(&st.sealer, &secret, me.user_id.as_str());
        let mut tx = st.db.begin().await?;
        users::set_pending_totp(&mut tx, me.user_id.as_str(), &sealed).await?;
        commit(tx).await?;
        leptos_axum::redirect("/account?enrol=1");
        Ok(enrolment)
    }

    /// The session key the fresh recovery codes wait under (sealed).
    const FRESH_CODES: &str = "totp_fresh_codes";

    pub async fn totp_pending() -> Result<Option<TotpEnrolment>, AppError> {
        use crate::ssr::totp;
        let me = crate::ssr::auth::current_user_enrolling().await?;
        let st = state()?;
        let row = {
            let mut conn = st.db.acquire().await?;
            users::totp(&mut conn, me.user_id.as_str()).await?
        };
        let (Some(sealed), None) = (row.totp_secret, row.totp_enabled_at) else {
            return Ok(None);
        };
        let t = totp::open(&st.sealer, &sealed, me.user_id.as_str(), &me.email)?;
        Ok(Some(totp::enrolment(&t)?))
    }

    pub async fn totp_fresh_codes() -> Result<Vec<String>, AppError> {
        let me = crate::ssr::auth::current_user_enrolling().await?;
        let st = state()?;
        let session = crate::ssr::auth::session().await?;
        let sealed: Option<String> = session
            .remove(FRESH_CODES)
            .await
            .map_err(|e| AppError::internal("the session store", e))?;
        let Some(sealed) = sealed else {
            return Ok(vec![]);
        };
        let codes = st
            .sealer
            .open(&sealed, me.user_id.as_str())
            .map_err(|e| AppError::internal("opening fresh recovery codes", e))?;
        Ok(codes.split(' ').map(str::to_owned).collect())
    }

    pub async fn totp_confirm(code: String) -> Result<Vec<String>, AppError> {
        use crate::ssr::totp;
        let me = crate::ssr::auth::current_user_enrolling().await?;
        let st = state()?;
        let now = st.clock.now();
        let row = {
            let mut conn = st.db.acquire().await?;
            users::totp(&mut conn, me.user_id.as_str()).await?
        };
        if row.totp_enabled_at.is_some() {
            return Err(AppError::Conflict("Two-step sign-in is on already.".into()));
        }
        let sealed = row.totp_secret.ok_or_else(|| {
            AppError::Validation("Start by showing the QR code, then enter a code.".into())
        })?;
        let t = totp::open(&st.sealer, &sealed, me.user_id.as_str(), &me.email)?;
        let step = totp::check(&t, &code, totp::now_secs()).ok_or_else(|| {
            AppError::Validation(
                "That code is not right: check the app's clock and try the next one.".into(),
            )
        })?;
        let step = i64::try_from(step).map_err(|e| AppError::internal("a TOTP step", e))?;
        let (codes, hashes) = totp::recovery_codes();
        let mut tx = st.db.begin().await?;
        users::enable_totp(&mut tx, me.user_id.as_str(), step, &hashes, now).await?;
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "user.totp_enabled",
                subject: &me.email,
                detail: json!({ "recovery_codes": hashes.len() }),
            },
        )
        .await?;
        commit(tx).await?;
        // Shown once, on the page the confirmation leads to.
        let session = crate::ssr::auth::session().await?;
        session
            .insert(
                FRESH_CODES,
                st.sealer.seal(&codes.join(" "), me.user_id.as_str()),
            )
            .await
            .map_err(|e| AppError::internal("the session store", e))?;
        leptos_axum::redirect("/account?codes=1");
        Ok(codes)
    }

    pub async fn set_totp_for_approvers(on: bool) -> Result<String, AppError> {
        let me = admin().await?;
        let st = state()?;
        let now = st.clock.now();
        let mut tx = st.db.begin().await?;
        let was = firms::set_totp_for_approvers(&mut tx, me.firm_id.as_str(), on).await?;
        audit::record(
            &mut tx,
            &me.firm_id,
            now,
            Entry {
                actor: &me.email,
                action: "firm.totp_for_approvers_changed",
                subject: me.firm_id.as_str(),
                detail: json!({ "old": was, "new": on }),
            },
        )
        .await?;
        commit(tx).await?;
        Ok(if on {
            "Everyone who approves payments must now use two-step sign-in.".into()
        } else {
            "Approvers may sign in with a password alone.".into()
        })
    }
}
