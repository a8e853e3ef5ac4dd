//! A client's rail credentials, opened from their sealed form only when a
//! call is about to be made.

use crate::rails::{RailAuth, SecretString};
use app::ssr::state::AppState;
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("client {client} has no {rail} connection")]
    Missing { client: String, rail: &'static str },
    #[error("the stored {0} token cannot be opened with this key")]
    Sealed(&'static str),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub async fn rail_auth(
    app: &AppState,
    client_id: &str,
    rail: &'static str,
) -> Result<RailAuth, ConnectionError> {
    let row = sqlx::query(
        "select external_id, token_sealed from rail_connection where client_id = $1 and rail = $2",
    )
    .bind(client_id)
    .bind(rail)
    .fetch_optional(&app.db.pool)
    .await?
    .ok_or_else(|| ConnectionError::Missing {
        client: client_id.to_owned(),
        rail,
    })?;
    let sealed: String = row.try_get("token_sealed")?;
    let token = app
        .sealer
        .open(&sealed)
        .map_err(|_| ConnectionError::Sealed(rail))?;
    Ok(RailAuth {
        external_id: row.try_get("external_id")?,
        access_token: SecretString::new(token),
    })
}
