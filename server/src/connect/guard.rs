//! Who may run a flow and with what: the signed-in admin, the firm's own
//! client, the browser session a flow is bound to, and the audited refusal
//! of a flow that fails one of these checks.

use super::error::{ConnectError, Doing};
use crate::router_state::ServerState;
use app::model::{ClientId, FirmId, Rail, Role};
use app::ssr::auth::{user_of_session, CurrentUser};
use app::ssr::store::{audit, clients, commit, Tx};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::Any;
use tower_sessions::Session;

/// How long a person has to come back from the provider.
pub const FLOW_TTL: chrono::Duration = chrono::Duration::minutes(15);
const SESSION_NONCE: &str = "connect_nonce";
/// Plaid's Hosted Link returns to a fixed URI: the flow is the session's.
pub const SESSION_PLAID_FLOW: &str = "plaid_flow";

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// 256 random bits, hex: an OAuth `state` or a session nonce.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn public_base(st: &ServerState) -> String {
    st.services.public_url.trim_end_matches('/').to_owned()
}

pub fn redirect_uri(public: &str, rail: Rail) -> String {
    format!(
        "{}/connect/{}/callback",
        public.trim_end_matches('/'),
        rail.as_str()
    )
}

/// A connection from the pool; a failure is RowCol's own, with its cause.
pub async fn conn(st: &ServerState) -> Result<PoolConnection<Any>, ConnectError> {
    st.services.db.acquire().await.doing("opening the database")
}

/// A transaction; a failure is RowCol's own, with its cause.
pub async fn begin(st: &ServerState) -> Result<Tx<'static>, ConnectError> {
    st.services.db.begin().await.doing("opening a transaction")
}

pub fn parse_rail(rail: &str) -> Result<Rail, ConnectError> {
    Rail::parse(rail).ok_or(ConnectError::NotFound("No such rail."))
}

pub async fn admin(st: &ServerState, session: &Session) -> Result<CurrentUser, ConnectError> {
    let user = user_of_session(session, &st.services.db)
        .await
        .map_err(ConnectError::Session)?;
    if user.require(Role::Admin).is_err() {
        return Err(ConnectError::NotAdmin);
    }
    // Live mode: an admin connects rails only with the second factor on.
    if st.app.live {
        app::ssr::auth::admin_has_second_factor(&user).map_err(ConnectError::Session)?;
    }
    Ok(user)
}

/// The signed-in person, if they may ask for a client's rails to be read
/// again (advisors and admins: a refresh changes no connection).
pub async fn advisor(st: &ServerState, session: &Session) -> Result<CurrentUser, ConnectError> {
    let user = user_of_session(session, &st.services.db)
        .await
        .map_err(ConnectError::Session)?;
    if user.require(Role::Advisor).is_err() {
        return Err(ConnectError::NotAdvisor);
    }
    Ok(user)
}

/// The client, if it is the user's firm's (else "not found", never a hint).
pub async fn own_client(
    st: &ServerState,
    user: &CurrentUser,
    id: &str,
) -> Result<ClientId, ConnectError> {
    let not_found = ConnectError::NotFound("No such client in your firm.");
    let Ok(client) = ClientId::parse(id) else {
        return Err(not_found);
    };
    let mut conn = conn(st).await?;
    match clients::firm_of(&mut conn, client.as_str()).await {
        Ok(f) if f == user.firm_id.as_str() => Ok(client),
        _ => Err(not_found),
    }
}

/// A digest of this browser session's connect nonce (made on first use):
/// a flow finishes only in the session that started it.
pub async fn session_binding(session: &Session) -> Result<String, ConnectError> {
    let nonce: Option<String> = session
        .get(SESSION_NONCE)
        .await
        .doing("reading the session")?;
    let nonce = match nonce {
        Some(n) => n,
        None => {
            let n = random_token();
            session
                .insert(SESSION_NONCE, &n)
                .await
                .doing("writing the session")?;
            n
        }
    };
    Ok(sha256_hex(&nonce))
}

/// Audit a refusal in the flow's firm and give the refusal to answer with.
pub async fn refuse_flow(
    st: &ServerState,
    firm: &str,
    rail: Rail,
    subject: &str,
    reason: &'static str,
    message: impl Into<String>,
) -> ConnectError {
    let at = st.services.clock.now();
    let recorded = async {
        let firm = FirmId::parse(firm).map_err(|e| e.to_string())?;
        let mut tx = st.services.db.begin().await.map_err(|e| e.to_string())?;
        audit::record(
            &mut tx,
            &firm,
            at,
            audit::Entry {
                actor: "rowcol",
                action: "connection.refused",
                subject,
                detail: serde_json::json!({ "rail": rail.as_str(), "reason": reason }),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        commit(tx).await.map_err(|e| e.to_string())
    };
    if let Err(e) = recorded.await {
        // The person still gets the refusal; the missing entry is logged.
        tracing::error!(error = %e, reason, "auditing a connect refusal failed");
    }
    ConnectError::refused(reason, message)
}
