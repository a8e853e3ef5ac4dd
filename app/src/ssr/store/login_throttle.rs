//! Sign-in failures (`login_failure`): what the sign-in throttle counts, per
//! account and per client address, over a sliding window. Kept in the
//! database so every instance on one PostgreSQL shares the count.

use super::db::{from_ms, to_ms, Tx};
use super::StoreResult;
use chrono::{DateTime, Duration, Utc};
use sqlx::AnyConnection;

/// How many failures, within how long, close the door.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_failures: i64,
    pub window: Duration,
}

/// When the door opens again for this account or this client address:
/// `None` if neither has `max_failures` failures inside the window. The
/// `max_failures`-th most recent failure is the one that has to age out.
pub async fn throttled_until(
    conn: &mut AnyConnection,
    policy: Policy,
    account: &str,
    client_addr: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<DateTime<Utc>>> {
    let since = to_ms(now - policy.window);
    let offset = policy.max_failures - 1;
    let mut until = None;
    for (column, key) in [("account", account), ("client_addr", client_addr)] {
        let nth: Option<i64> = sqlx::query_scalar(&format!(
            "select at from login_failure where {column} = $1 and at > $2
             order by at desc limit 1 offset $3"
        ))
        .bind(key)
        .bind(since)
        .bind(offset)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(at) = nth {
            let lifts = from_ms(at) + policy.window;
            until = Some(until.map_or(lifts, |u: DateTime<Utc>| u.max(lifts)));
        }
    }
    Ok(until)
}

/// Failures inside the window after the one just recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub account: i64,
    pub client_addr: i64,
}

/// Whether an attempt may go on to check its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted as a failure from now on (the row's id): a success takes it
    /// back with [`forget`].
    Admitted(String),
    /// Too many failures: the door opens again at this instant.
    Throttled(DateTime<Utc>),
}

/// Let one sign-in attempt in, or not, before any password is hashed. An
/// attempt let in is counted as a failure at once, so wrong passwords sent
/// together cannot all pass the check while the first ones are still being
/// hashed (issue #18 §3): the count and the place taken are one step,
/// serialised per account and per address (PostgreSQL: advisory locks in a
/// fixed order; SQLite: the write lock, taken by the first statement).
/// Drops the failures that have left the window, so the table holds at
/// most a window's worth.
pub async fn admit(
    tx: &mut Tx<'_>,
    policy: Policy,
    account: &str,
    client_addr: &str,
    at: DateTime<Utc>,
) -> StoreResult<Admission> {
    if tx.backend_name() == "PostgreSQL" {
        for (class, key) in [(1, account), (2, client_addr)] {
            sqlx::query("select pg_advisory_xact_lock($1, hashtext($2))::text")
                .bind(class)
                .bind(key)
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query("delete from login_failure where at <= $1")
        .bind(to_ms(at - policy.window))
        .execute(&mut **tx)
        .await?;
    if let Some(until) = throttled_until(tx, policy, account, client_addr, at).await? {
        return Ok(Admission::Throttled(until));
    }
    let id = format!("lf_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "insert into login_failure (login_failure_id, account, client_addr, at) values ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(account)
    .bind(client_addr)
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await?;
    Ok(Admission::Admitted(id))
}

/// The attempt succeeded (or never checked a password): its place in the
/// count is taken back. Failures before it stay.
pub async fn forget(conn: &mut AnyConnection, attempt: &str) -> StoreResult<()> {
    sqlx::query("delete from login_failure where login_failure_id = $1")
        .bind(attempt)
        .execute(conn)
        .await?;
    Ok(())
}

/// The failures inside the window for the account and the address, the
/// one just made included.
pub async fn counts(
    tx: &mut Tx<'_>,
    policy: Policy,
    account: &str,
    client_addr: &str,
    at: DateTime<Utc>,
) -> StoreResult<Counts> {
    let since = to_ms(at - policy.window);
    let (account, client_addr): (i64, i64) = sqlx::query_as(
        "select (select count(*) from login_failure where account = $1 and at > $3),
                (select count(*) from login_failure where client_addr = $2 and at > $3)",
    )
    .bind(account)
    .bind(client_addr)
    .bind(since)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Counts {
        account,
        client_addr,
    })
}
