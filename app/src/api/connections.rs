use crate::error::AppError;
use crate::model::ConnectionsView;
use leptos::prelude::*;

/// Every client of the firm with the health of each of its rails. Anyone
/// signed in may look; only admins may act (the actions are plain form
/// posts to `/connect/…` and `/connections/…`, refused to anyone else).
#[server(endpoint = "connections")]
pub async fn get_connections() -> Result<ConnectionsView, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::list().await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::store::{connections, from_ms, read_models};
    use chrono::{DateTime, Duration, Utc};

    /// Warn this long before a refresh token (or consent) runs out.
    pub const WARN_AHEAD: Duration = Duration::days(14);

    pub async fn list() -> Result<ConnectionsView, AppError> {
        let user = current_user().await?;
        let st = state()?;
        let mut conn = st.db.read().await?;
        let clients = read_models::client_names(&mut conn, &user.firm_id).await?;
        let rows = connections::list_for_firm(&mut conn, &user.firm_id).await?;
        // Token lifetimes are the providers' wall clock, not the sandbox's.
        let wall = Utc::now();
        let out = clients
            .into_iter()
            .map(|(id, name)| {
                let rails = Rail::ALL
                    .iter()
                    .map(|r| {
                        let row = rows
                            .iter()
                            .find(|c| c.client_id == id.as_str() && c.rail == r.as_str());
                        view(*r, row, wall)
                    })
                    .collect();
                ClientConnectionsView {
                    client_id: id,
                    name,
                    rails,
                }
            })
            .collect();
        Ok(ConnectionsView {
            can_manage: user.role >= Role::Admin,
            can_refresh: user.role >= Role::Advisor,
            clients: out,
        })
    }

    fn view(
        rail: Rail,
        row: Option<&connections::ConnectionRow>,
        wall: DateTime<Utc>,
    ) -> RailConnectionView {
        let Some(c) = row else {
            return RailConnectionView {
                rail,
                health: ConnectionHealth::Never,
                account_name: None,
                external_id: None,
                method: None,
                connected_by: None,
                connected_at: None,
                access_expires_at: None,
                refresh_expires_at: None,
                last_sync_at: None,
                last_error: None,
                last_error_at: None,
                warning: None,
                webhook_status: None,
            };
        };
        let health = match c.status.as_str() {
            "active" => ConnectionHealth::Connected,
            "needs_reconnect" => ConnectionHealth::NeedsReconnect,
            _ => ConnectionHealth::Disconnected,
        };
        let refresh_expires_at = c.refresh_expires_at.map(from_ms);
        let warning = match (health, refresh_expires_at) {
            (ConnectionHealth::Connected, Some(t)) if t - WARN_AHEAD < wall => Some(format!(
                "Consent runs out on {}: reconnect before then.",
                t.format("%Y-%m-%d")
            )),
            _ => None,
        };
        RailConnectionView {
            rail,
            health,
            account_name: c.account_name.clone(),
            external_id: Some(c.external_id.clone()),
            method: Some(c.method.clone()),
            connected_by: c.connected_by_name.clone(),
            connected_at: c.connected_at.map(from_ms),
            access_expires_at: c.access_expires_at.map(from_ms),
            refresh_expires_at,
            last_sync_at: c.synced_at.or(c.last_success_at).map(from_ms),
            last_error: c.last_error.clone(),
            last_error_at: c.last_error_at.map(from_ms),
            warning,
            webhook_status: c.webhook_status.clone(),
        }
    }
}
