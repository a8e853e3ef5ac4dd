//! Users (`app_user`). Password hashes are read only to verify a sign-in
//! and never leave the server. A deactivated user is not found by a
//! sign-in or a session: their sessions end at the next request.

use super::db::{to_ms, Tx};
use super::StoreResult;
use crate::model::{FirmId, Role, UserId};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

pub struct NewUser<'a> {
    pub firm: &'a FirmId,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

/// Create a user; an existing email is a unique violation.
pub async fn create(tx: &mut Tx<'_>, u: &NewUser<'_>, at: DateTime<Utc>) -> StoreResult<UserId> {
    insert(tx, u, at, "").await
}

/// Create a user, or (sandbox demo users) reset an existing one's password.
pub async fn create_or_reset_password(
    tx: &mut Tx<'_>,
    u: &NewUser<'_>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    insert(
        tx,
        u,
        at,
        "on conflict (email) do update set password_hash = excluded.password_hash",
    )
    .await
    .map(|_| ())
}

async fn insert(
    tx: &mut Tx<'_>,
    u: &NewUser<'_>,
    at: DateTime<Utc>,
    on_conflict: &str,
) -> StoreResult<UserId> {
    let id = UserId::generate();
    sqlx::query(&format!(
        "insert into app_user (user_id, firm_id, email, name, role, password_hash, created_at)
         values ($1, $2, $3, $4, $5, $6, $7) {on_conflict}"
    ))
    .bind(id.as_str())
    .bind(u.firm.as_str())
    .bind(u.email)
    .bind(u.name)
    .bind(u.role.as_str())
    .bind(u.password_hash)
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// The id and password hash of the user with this (normalised) email.
pub async fn credentials(
    conn: &mut AnyConnection,
    email: &str,
) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "select user_id, password_hash from app_user where email = $1 and deactivated_at is null",
    )
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// A signed-in user with their firm's name.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionUser {
    pub user_id: String,
    pub firm_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub firm_name: String,
    /// When the person turned the second factor on (`None`: off).
    pub totp_enabled_at: Option<i64>,
}

pub async fn session_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> StoreResult<Option<SessionUser>> {
    Ok(sqlx::query_as(
        "select u.user_id, u.firm_id, u.email, u.name, u.role, f.name as firm_name, u.totp_enabled_at
         from app_user u join firm f on f.firm_id = u.firm_id
         where u.user_id = $1 and u.deactivated_at is null",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}

/// The emails of the firm's people, sorted.
pub async fn emails_of_firm(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
) -> StoreResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("select email from app_user where firm_id = $1 order by email")
            .bind(firm_id.as_str())
            .fetch_all(conn)
            .await?,
    )
}

/// A person of the firm, as the users page lists them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub deactivated_at: Option<i64>,
    pub totp_enabled_at: Option<i64>,
}

/// The firm's people, active first, then by email.
pub async fn list(conn: &mut AnyConnection, firm_id: &FirmId) -> StoreResult<Vec<UserRow>> {
    Ok(sqlx::query_as(
        "select user_id, email, name, role, created_at, deactivated_at, totp_enabled_at from app_user
         where firm_id = $1
         order by case when deactivated_at is null then 0 else 1 end, email",
    )
    .bind(firm_id.as_str())
    .fetch_all(conn)
    .await?)
}

/// The firm's person, if they are the firm's (`NotFound` otherwise).
pub async fn of_firm(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
    user_id: &str,
) -> StoreResult<UserRow> {
    sqlx::query_as(
        "select user_id, email, name, role, created_at, deactivated_at, totp_enabled_at from app_user
         where firm_id = $1 and user_id = $2",
    )
    .bind(firm_id.as_str())
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(super::StoreError::NotFound)
}

/// How many active admins the firm has, counted in the caller's
/// transaction (which then holds the rows it changes).
pub async fn active_admins(tx: &mut Tx<'_>, firm_id: &FirmId) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from app_user where firm_id = $1 and role = 'admin' and deactivated_at is null",
    )
    .bind(firm_id.as_str())
    .fetch_one(&mut **tx)
    .await?)
}

/// Give an active person of the firm another role, guarded on the role it
/// had when read (a concurrent change is a `Conflict`).
pub async fn set_role(
    tx: &mut Tx<'_>,
    firm_id: &FirmId,
    user_id: &str,
    from: Role,
    to: Role,
) -> StoreResult<()> {
    let done = sqlx::query(
        "update app_user set role = $1
         where firm_id = $2 and user_id = $3 and role = $4 and deactivated_at is null",
    )
    .bind(to.as_str())
    .bind(firm_id.as_str())
    .bind(user_id)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(super::StoreError::Conflict("the person changed meanwhile"))
    }
}

/// Deactivate an active person of the firm.
pub async fn deactivate(
    tx: &mut Tx<'_>,
    firm_id: &FirmId,
    user_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "update app_user set deactivated_at = $1
         where firm_id = $2 and user_id = $3 and deactivated_at is null",
    )
    .bind(to_ms(at))
    .bind(firm_id.as_str())
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(super::StoreError::Conflict(
            "this person is already deactivated",
        ))
    }
}

/// Set an active person's password hash.
pub async fn set_password(tx: &mut Tx<'_>, user_id: &str, password_hash: &str) -> StoreResult<()> {
    let done = sqlx::query(
        "update app_user set password_hash = $1 where user_id = $2 and deactivated_at is null",
    )
    .bind(password_hash)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(super::StoreError::NotFound)
    }
}

/// A person's password hash, to check their current password.
pub async fn password_hash(conn: &mut AnyConnection, user_id: &str) -> StoreResult<String> {
    sqlx::query_scalar(
        "select password_hash from app_user where user_id = $1 and deactivated_at is null",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(super::StoreError::NotFound)
}

/// Whether the email belongs to anyone (active or not): emails are unique.
pub async fn email_taken(conn: &mut AnyConnection, email: &str) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar("select count(*) from app_user where email = $1")
        .bind(email)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// A person's second factor: the sealed secret (enrolled or pending) and
/// whether it is on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRow {
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<i64>,
}

pub async fn totp(conn: &mut AnyConnection, user_id: &str) -> StoreResult<TotpRow> {
    sqlx::query_as("select totp_secret, totp_enabled_at from app_user where user_id = $1")
        .bind(user_id)
        .fetch_optional(conn)
        .await?
        .ok_or(super::StoreError::NotFound)
}

/// Start enrolling (or start again): a new sealed secret, not on yet.
/// Refused (`Conflict`) once the second factor is on.
pub async fn set_pending_totp(tx: &mut Tx<'_>, user_id: &str, sealed: &str) -> StoreResult<()> {
    let done = sqlx::query(
        "update app_user set totp_secret = $1 where user_id = $2 and totp_enabled_at is null",
    )
    .bind(sealed)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(super::StoreError::Conflict(
            "two-step sign-in is on already",
        ))
    }
}

/// Turn the second factor on with the step its first code used, and store
/// the recovery codes' hashes (replacing any).
pub async fn enable_totp(
    tx: &mut Tx<'_>,
    user_id: &str,
    step: i64,
    recovery_hashes: &[String],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "update app_user set totp_enabled_at = $1, totp_last_step = $2
         where user_id = $3 and totp_enabled_at is null and totp_secret is not null",
    )
    .bind(to_ms(at))
    .bind(step)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(super::StoreError::Conflict(
            "two-step sign-in is on already",
        ));
    }
    sqlx::query("delete from recovery_code where user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for h in recovery_hashes {
        sqlx::query("insert into recovery_code (user_id, code_hash) values ($1, $2)")
            .bind(user_id)
            .bind(h)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Accept a code's time step once: `false` if it (or a later one) was
/// accepted before (a replayed code).
pub async fn accept_totp_step(
    conn: &mut AnyConnection,
    user_id: &str,
    step: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update app_user set totp_last_step = $1
         where user_id = $2 and (totp_last_step is null or totp_last_step < $1)",
    )
    .bind(step)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Use a recovery code once: `false` if unknown or used.
pub async fn use_recovery_code(
    conn: &mut AnyConnection,
    user_id: &str,
    code_hash: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "update recovery_code set used_at = $1
         where user_id = $2 and code_hash = $3 and used_at is null",
    )
    .bind(to_ms(at))
    .bind(user_id)
    .bind(code_hash)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every sealed TOTP secret (enrolled or pending), for `rowcol rotate-key`.
pub async fn sealed_totp(conn: &mut AnyConnection) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select user_id, totp_secret from app_user where totp_secret is not null order by user_id",
    )
    .fetch_all(conn)
    .await?)
}

/// Replace a sealed TOTP secret with the same secret sealed under the
/// current key, guarded on it being unchanged since it was read.
pub async fn reseal_totp(
    tx: &mut Tx<'_>,
    user_id: &str,
    old: &str,
    new: &str,
) -> StoreResult<bool> {
    let done =
        sqlx::query("update app_user set totp_secret = $3 where user_id = $1 and totp_secret = $2")
            .bind(user_id)
            .bind(old)
            .bind(new)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Turn a person's second factor off (an admin's reset after a lost
/// phone): the secret, the last accepted step and the recovery codes go.
/// `false` if the person is not the firm's or has it off already.
pub async fn clear_totp(tx: &mut Tx<'_>, firm_id: &FirmId, user_id: &str) -> StoreResult<bool> {
    let done = sqlx::query(
        "update app_user set totp_secret = null, totp_enabled_at = null, totp_last_step = null
         where firm_id = $1 and user_id = $2 and totp_enabled_at is not null",
    )
    .bind(firm_id.as_str())
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("delete from recovery_code where user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
