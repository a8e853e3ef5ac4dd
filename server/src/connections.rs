//! A client's rail credentials, opened from their sealed form only when a
//! call is about to be made.

use crate::rails::{RailAuth, SecretString};
use crate::services::Services;
use app::model::Rail;
use app::ssr::store::{connections, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("client {client} has no {rail} connection")]
    Missing { client: String, rail: Rail },
    #[error("the stored {0} token cannot be opened with this key")]
    Sealed(Rail),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn rail_auth(
    svc: &Services,
    client_id: &str,
    rail: Rail,
) -> Result<RailAuth, ConnectionError> {
    let mut conn = svc.db.acquire().await?;
    let creds = connections::sealed_credentials(&mut conn, client_id, rail)
        .await?
        .ok_or_else(|| ConnectionError::Missing {
            client: client_id.to_owned(),
            rail,
        })?;
    let token = svc
        .sealer
        .open(&creds.token_sealed)
        .map_err(|_| ConnectionError::Sealed(rail))?;
    Ok(RailAuth {
        external_id: creds.external_id,
        access_token: SecretString::new(token),
    })
}
