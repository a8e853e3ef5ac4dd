//! The sandbox's persisted state (`sandbox_state`): the simulators' world
//! (sealed by the caller: it holds the simulated rails' tokens) and the
//! clock offset.

use super::db::to_ms;
use super::StoreResult;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

const RAILS: &str = "rails";
const CLOCK: &str = "clock";

async fn save(
    conn: &mut AnyConnection,
    id: &str,
    state: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into sandbox_state (sandbox_id, state, updated_at) values ($1, $2, $3)
         on conflict (sandbox_id) do update set state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(state)
    .bind(to_ms(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The sealed simulator document, if one was saved.
pub async fn load_rails(conn: &mut AnyConnection) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("select state from sandbox_state where sandbox_id = $1")
            .bind(RAILS)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn save_rails(
    conn: &mut AnyConnection,
    sealed: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    save(conn, RAILS, sealed, at).await
}

/// The row of a separately saved part of the simulator world.
fn part_id(part: &str) -> String {
    format!("{RAILS}.{part}")
}

/// A sealed part of the simulator world (see `sandbox::SimStore`), if saved.
pub async fn load_rails_part(conn: &mut AnyConnection, part: &str) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("select state from sandbox_state where sandbox_id = $1")
            .bind(part_id(part))
            .fetch_optional(conn)
            .await?,
    )
}

/// The name of every part of the simulator world saved apart (what a key
/// rotation re-seals): the store knows them from its rows, not from the
/// sandbox's layout.
pub async fn rails_parts(conn: &mut AnyConnection) -> StoreResult<Vec<String>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "select sandbox_id from sandbox_state where sandbox_id like $1 order by sandbox_id",
    )
    .bind(format!("{RAILS}.%"))
    .fetch_all(conn)
    .await?;
    let prefix = format!("{RAILS}.");
    Ok(ids
        .into_iter()
        .filter_map(|id| id.strip_prefix(&prefix).map(str::to_owned))
        .collect())
}

pub async fn save_rails_part(
    conn: &mut AnyConnection,
    part: &str,
    sealed: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    save(conn, &part_id(part), sealed, at).await
}

pub async fn save_clock_offset(
    conn: &mut AnyConnection,
    offset_secs: i64,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    save(conn, CLOCK, &offset_secs.to_string(), at).await
}

/// The clock offset last saved, if any: instances that use another
/// instance's simulators follow that instance's clock through it.
pub async fn load_clock_offset(conn: &mut AnyConnection) -> StoreResult<Option<i64>> {
    let saved: Option<String> =
        sqlx::query_scalar("select state from sandbox_state where sandbox_id = $1")
            .bind(CLOCK)
            .fetch_optional(conn)
            .await?;
    Ok(saved.and_then(|s| s.parse().ok()))
}
