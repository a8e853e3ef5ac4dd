//! One-time links (`user_link`): invitations and password resets. Only the
//! SHA-256 of a link's token is stored; a link is taken at most once, while
//! it has not expired, in the transaction that acts on it.

use super::db::{to_ms, Tx};
use super::{StoreError, StoreResult};
use crate::model::{FirmId, Role};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Invite,
    Reset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Invite => "invite",
            Purpose::Reset => "reset",
        }
    }
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub struct NewLink<'a> {
    pub token: &'a str,
    pub firm_id: &'a FirmId,
    pub purpose: Purpose,
    pub email: &'a str,
    pub role: Option<Role>,
    pub user_id: Option<&'a str>,
    pub created_by: &'a str,
    pub at: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

pub async fn create(tx: &mut Tx<'_>, l: &NewLink<'_>) -> StoreResult<()> {
    sqlx::query(
        "insert into user_link (token_hash, firm_id, purpose, email, role, user_id, created_by, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash(l.token))
    .bind(l.firm_id.as_str())
    .bind(l.purpose.as_str())
    .bind(l.email)
    .bind(l.role.map(Role::as_str))
    .bind(l.user_id)
    .bind(l.created_by)
    .bind(to_ms(l.at))
    .bind(to_ms(l.expires))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A link as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub firm_id: String,
    pub purpose: String,
    pub email: String,
    pub role: Option<String>,
    pub user_id: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str =
    "firm_id, purpose, email, role, user_id, created_by, created_at, expires_at, used_at";

/// Why a link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Unknown,
    Used,
    Expired,
}

/// The link a token names, if it can still be used at `now`.
pub async fn usable(
    conn: &mut AnyConnection,
    token: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<LinkRow, Unusable>> {
    let row: Option<LinkRow> = sqlx::query_as(&format!(
        "select {COLUMNS} from user_link where token_hash = $1"
    ))
    .bind(token_hash(token))
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        None => Err(Unusable::Unknown),
        Some(r) if r.used_at.is_some() => Err(Unusable::Used),
        Some(r) if r.expires_at <= to_ms(now) => Err(Unusable::Expired),
        Some(r) => Ok(r),
    })
}

/// Take the link in the caller's transaction: guarded on it being unused
/// and unexpired, so two uses at once cannot both succeed.
pub async fn take(tx: &mut Tx<'_>, token: &str, now: DateTime<Utc>) -> StoreResult<()> {
    let done = sqlx::query(
        "update user_link set used_at = $1
         where token_hash = $2 and used_at is null and expires_at > $1",
    )
    .bind(to_ms(now))
    .bind(token_hash(token))
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(
            "this link was used already or has expired",
        ))
    }
}

/// The firm's invitations not yet used nor expired, newest first.
pub async fn pending_invites(
    conn: &mut AnyConnection,
    firm_id: &FirmId,
    now: DateTime<Utc>,
) -> StoreResult<Vec<LinkRow>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from user_link
         where firm_id = $1 and purpose = 'invite' and used_at is null and expires_at > $2
         order by created_at desc"
    ))
    .bind(firm_id.as_str())
    .bind(to_ms(now))
    .fetch_all(conn)
    .await?)
}
