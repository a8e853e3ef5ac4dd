//! Users (`app_user`). Password hashes are read only to verify a sign-in
//! and never leave the server.

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
    Ok(
        sqlx::query_as("select user_id, password_hash from app_user where email = $1")
            .bind(email)
            .fetch_optional(conn)
            .await?,
    )
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
}

pub async fn session_user(
    conn: &mut AnyConnection,
    user_id: &str,
) -> StoreResult<Option<SessionUser>> {
    Ok(sqlx::query_as(
        "select u.user_id, u.firm_id, u.email, u.name, u.role, f.name as firm_name
         from app_user u join firm f on f.firm_id = u.firm_id where u.user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?)
}
