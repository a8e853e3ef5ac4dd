//! The router: RowCol's pages and server functions, the plain routes
//! (connect flows, webhooks, health, metrics, exports), the simulators'
//! mount in sandbox mode, and the layers every request passes (sessions,
//! security headers, request spans); and the session store it uses.

use crate::config::{Config, RailsMode};
use crate::router_state::ServerState;
use app::ssr::store::Backend;
use app::{shell, App};
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::str::FromStr;
use std::sync::Arc;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

pub(super) fn build_router(
    state: ServerState,
    config: &Config,
    sessions: SessionStore,
    security: Arc<crate::security::SecurityPolicy>,
) -> Router {
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name("rowcol_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.rails == RailsMode::Live)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));
    let routes = generate_route_list(App);
    let app_state = state.app.clone();
    let opts = state.app.leptos_options.clone();
    // Each webhook answer is timed for /metrics (only these routes: the
    // rail label is one of theirs, never a path someone made up).
    let webhooks: Router<ServerState> = Router::new()
        .route("/webhooks/ramp", post(crate::webhooks::ramp::receive))
        .route("/webhooks/qbo", post(crate::webhooks::qbo::receive))
        .route("/webhooks/plaid", post(crate::webhooks::plaid::receive))
        .route("/webhooks/stripe", post(crate::webhooks::stripe::receive))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::routes::metrics::time_webhook,
        ));
    let mut router: Router<ServerState> = Router::new()
        .route("/healthz", get(crate::routes::health::healthz))
        .route("/readyz", get(crate::routes::health::readyz))
        .route("/metrics", get(crate::routes::metrics::scrape))
        .route("/audit/export", get(crate::routes::audit_export::export))
        .route(
            "/audit/checkpoint",
            get(crate::routes::audit_export::checkpoint),
        )
        .merge(webhooks)
        .route("/connect/stripe/key", post(crate::connect::stripe_key))
        .route("/connect/{rail}/start", post(crate::connect::start))
        .route("/connect/{rail}/callback", get(crate::connect::callback))
        .route(
            "/connections/{client}/{rail}/disconnect",
            post(crate::connect::disconnect),
        )
        .route("/connections/{client}/sync", post(crate::connect::sync_now))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(app_state.clone());
                crate::security::provide_request_nonce();
            },
            move || shell(opts.clone()),
        );
    if let Some(sb) = &state.services.sandbox {
        router = router.nest_service("/sandbox", sb.router());
    }
    // Unknown paths render the app's "not found" page, which needs the same
    // context as any page.
    let fallback_opts = state.app.leptos_options.clone();
    let fallback_state = state.app.clone();
    router
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            ServerState,
            _,
        >(
            move || {
                provide_context(fallback_state.clone());
                crate::security::provide_request_nonce();
            },
            move |_| shell(fallback_opts.clone()),
        ))
        .layer(session_layer)
        // Malformed server-function calls refused with a plain 4xx before
        // any session work (`/api/*` only).
        .layer(axum::middleware::from_fn(crate::routes::server_fns::edge))
        // Outermost but tracing: refuses cross-origin state changes before
        // any session or handler work, and stamps every response's headers.
        .layer(axum::middleware::from_fn_with_state(
            security,
            crate::security::guard,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The request span: method and path, never the query string. OAuth and
/// Plaid callbacks carry the authorization code, `state` and public tokens
/// in the query (`GET /connect/{rail}/callback?code=…&state=…`), and
/// tower-http's default span records the whole URI. Same target as that
/// default, so `RUST_LOG=tower_http=debug` still shows it.
pub fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        target: "tower_http::trace::make_span",
        "request",
        method = %req.method(),
        path = req.uri().path(),
        version = ?req.version(),
    )
}

/// Sessions live in the database: a concrete SQLite or PostgreSQL store
/// (tower-sessions' stores are engine specific), on their own small pool.
pub(super) async fn session_store(url: &str) -> anyhow::Result<SessionStore> {
    Ok(match Backend::from_url(url)? {
        Backend::Sqlite => {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(opts)
                .await?;
            let store = tower_sessions_sqlx_store::SqliteStore::new(pool);
            store.migrate().await?;
            SessionStore::Sqlite(store)
        }
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(url)
                .await?;
            let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
            store.migrate().await?;
            SessionStore::Postgres(store)
        }
    })
}

/// One store type over both engines.
#[derive(Debug, Clone)]
pub enum SessionStore {
    Sqlite(tower_sessions_sqlx_store::SqliteStore),
    Postgres(tower_sessions_sqlx_store::PostgresStore),
}

#[async_trait::async_trait]
impl tower_sessions::SessionStore for SessionStore {
    async fn create(
        &self,
        r: &mut tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        match self {
            SessionStore::Sqlite(s) => s.create(r).await,
            SessionStore::Postgres(s) => s.create(r).await,
        }
    }
    async fn save(
        &self,
        r: &tower_sessions::session::Record,
    ) -> tower_sessions::session_store::Result<()> {
        match self {
            SessionStore::Sqlite(s) => s.save(r).await,
            SessionStore::Postgres(s) => s.save(r).await,
        }
    }
    async fn load(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<Option<tower_sessions::session::Record>> {
        match self {
            SessionStore::Sqlite(s) => s.load(id).await,
            SessionStore::Postgres(s) => s.load(id).await,
        }
    }
    async fn delete(
        &self,
        id: &tower_sessions::session::Id,
    ) -> tower_sessions::session_store::Result<()> {
        match self {
            SessionStore::Sqlite(s) => s.delete(id).await,
            SessionStore::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait::async_trait]
impl tower_sessions::session_store::ExpiredDeletion for SessionStore {
    async fn delete_expired(&self) -> tower_sessions::session_store::Result<()> {
        match self {
            SessionStore::Sqlite(s) => s.delete_expired().await,
            SessionStore::Postgres(s) => s.delete_expired().await,
        }
    }
}
