//! Assemble RowCol from (config, listener): database, migrations, rails
//! (simulated or live), state, router, worker. Tests build it on port 0.

use crate::config::{Config, RailsMode};
use crate::ports::{DbSimStore, PlaidCash, QboLedger, RampStop, SandboxClock};
use crate::rails::accounts::{Onboarding, StripeClient};
use crate::rails::{plaid::PlaidClient, qbo::QboClient, ramp::RampClient, Rails, SecretString};
use crate::services::Services;
use crate::state::ServerState;
use anyhow::Context;
use app::ssr::clock::Clock;
use app::ssr::ports::{CashRefresher, SandboxControl};
use app::ssr::state::AppState;
use app::ssr::store::{Backend, Db};
use app::{shell, App};
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sandbox::{Sandbox, SandboxConfig};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

pub struct Application {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub state: ServerState,
    pub router: Router,
    pub worker: bool,
    /// Sandbox mode on another instance's simulators: keep this clock on theirs.
    pub follow_clock: bool,
    pub sessions: SessionStore,
    /// The demo password in sandbox mode (printed at start).
    pub demo_password: Option<String>,
}

pub fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    // Built by cargo-leptos, the binary knows its site settings; a plain
    // `cargo test`/`cargo bench` build does not (and asking would print a
    // warning), so those use the workspace defaults.
    let built_by_cargo_leptos = option_env!("LEPTOS_OUTPUT_NAME").is_some()
        || std::env::var_os("LEPTOS_OUTPUT_NAME").is_some();
    let configured = if built_by_cargo_leptos {
        get_configuration(None).ok().map(|c| c.leptos_options)
    } else {
        None
    };
    let mut opts = configured.unwrap_or_else(|| {
        LeptosOptions::builder()
            .output_name("rowcol")
            .site_root("target/site")
            .site_pkg_dir("pkg")
            .build()
    });
    if let Ok(root) = std::env::var("LEPTOS_SITE_ROOT") {
        opts.site_root = root.into();
    }
    opts.site_addr = addr;
    opts
}

/// Open the database (creating a SQLite file and its folder when needed)
/// and apply migrations.
pub async fn open_database(url: &str) -> anyhow::Result<Db> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        if !std::path::Path::new(path).exists() {
            std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
        }
    }
    let db = Db::connect(url)
        .await
        .context("connecting to the database")?;
    db.migrate().await.context("applying migrations")?;
    Ok(db)
}

/// The rails at their base URLs: the sandbox's when it runs, else the
/// configured live ones. Only base URLs and credentials differ.
fn rails(
    config: &Config,
    http: &crate::rails::http::RailHttp,
    base: Option<&str>,
    plaid_secret: &str,
) -> (Rails, Onboarding) {
    let (ledger, bill_pay, cash, stripe, plaid_id) = match base {
        Some(b) => (
            format!("{b}/qbo"),
            format!("{b}/ramp"),
            format!("{b}/plaid"),
            format!("{b}/stripe"),
            SANDBOX_PLAID_CLIENT_ID.to_owned(),
        ),
        None => (
            config.qbo_base_url.clone(),
            config.ramp_base_url.clone(),
            config.plaid_base_url.clone(),
            config.stripe_base_url.clone(),
            config.plaid_client_id.clone(),
        ),
    };
    let plaid = || {
        PlaidClient::new(
            cash.clone(),
            plaid_id.clone(),
            SecretString::new(plaid_secret.to_owned()),
            http.clone(),
        )
    };
    (
        Rails {
            ledger: Arc::new(QboClient::new(ledger.clone(), http.clone())),
            bill_pay: Arc::new(RampClient::new(bill_pay.clone(), http.clone())),
            cash: Arc::new(plaid()),
        },
        Onboarding {
            qbo: QboClient::new(ledger, http.clone()),
            ramp: RampClient::new(bill_pay, http.clone()),
            plaid: plaid(),
            stripe: StripeClient::new(stripe, http.clone()),
        },
    )
}

const SANDBOX_PLAID_CLIENT_ID: &str = "rowcol-sandbox";

/// Sandbox mode serves demo users (their password printed at start) and
/// unauthenticated clock and fault controls: fine on this machine, an open
/// door on a public address. Checked before anything touches the database.
fn refuse_public_sandbox(config: &Config, addr: SocketAddr) -> anyhow::Result<()> {
    let loopback = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    };
    if config.rails == RailsMode::Sandbox && !loopback && !config.allow_public_sandbox {
        anyhow::bail!(
            "refusing to serve sandbox mode on {addr}: it has demo users and unauthenticated \
             clock and fault controls, so it listens only on a loopback address (for example \
             ROWCOL_ADDR=127.0.0.1:3000). Set ROWCOL_ALLOW_PUBLIC_SANDBOX=true to expose it anyway."
        );
    }
    Ok(())
}

impl Application {
    /// Build in one direction: services (database, clock, sealer, rails,
    /// sandbox) → ports → app state → router. The worker starts in `run`.
    pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Application> {
        config.validate().map_err(anyhow::Error::msg)?;
        let addr = listener.local_addr()?;
        refuse_public_sandbox(&config, addr)?;
        let security = crate::security::SecurityPolicy::new(
            config.public_url.as_deref(),
            config.rails == RailsMode::Live,
        )?;

        // --- services
        let db = open_database(&config.database_url).await?;
        let sealer = crate::keys::sealer(&config)?;
        // Values sealed before they were bound to their row are re-sealed
        // (bound) once; nothing else is touched (see `rowcol rotate-key`).
        let upgraded = crate::keys::reseal(&db, &sealer, true).await?;
        if upgraded != crate::keys::ResealReport::default() {
            tracing::info!(?upgraded, "re-sealed values written before key ids");
        }
        let clock = Clock::system();
        let metrics = app::ssr::metrics::Metrics::new();
        let http = crate::rails::http::RailHttp::new(
            crate::rails::http::build_client(std::time::Duration::from_millis(
                config.rail_timeout_ms,
            )),
            metrics.clone(),
        );
        let sandbox_mode = config.rails == RailsMode::Sandbox;
        let follower = sandbox_mode && config.sandbox_rails_url.is_some();
        let ((rails, onboarding), sandbox, webhook_secret, qbo_verifier) =
            if let (true, Some(base)) = (sandbox_mode, config.sandbox_rails_url.as_deref()) {
                // Another instance hosts the simulators and has seeded the demo
                // world on this database; validate() made sure the secrets are
                // given (they must be that instance's).
                let base = base.trim_end_matches('/');
                let plaid_secret = config.plaid_secret.clone().unwrap_or_default();
                let rails = rails(&config, &http, Some(base), &plaid_secret);
                let shared = {
                    let mut conn = db.acquire().await?;
                    app::ssr::store::sandbox_state::load_clock_offset(&mut conn).await?
                };
                let Some(offset) = shared else {
                    anyhow::bail!(
                        "ROWCOL_SANDBOX_RAILS_URL is set but this database has no sandbox world \
                         yet: start the instance that hosts the simulators first"
                    );
                };
                clock.set_offset_secs(offset);
                (
                    rails,
                    None,
                    config.ramp_webhook_secret.clone().unwrap_or_default(),
                    config.qbo_webhook_verifier.clone().unwrap_or_default(),
                )
            } else if sandbox_mode {
                let base = format!("http://{addr}/sandbox");
                // Where browsers and outside programs reach this instance.
                let public = config
                    .public_url
                    .as_deref()
                    .map(|u| u.trim_end_matches('/').to_owned())
                    .unwrap_or_else(|| format!("http://{addr}"));
                // Stable across restarts (derived from the key) unless given:
                // outside programs keep using what the sandbox listed.
                let webhook_secret = match config.ramp_webhook_secret.clone() {
                    Some(s) => s,
                    None => crate::keys::derived_sandbox_secret(&config, "whsec_sandbox")?,
                };
                // Given when other instances use these simulators (they must
                // present the same one); otherwise derived, stable per key.
                let qbo_verifier = match config.qbo_webhook_verifier.clone() {
                    Some(s) => s,
                    None => crate::keys::derived_sandbox_secret(&config, "qbo_verifier_sandbox")?,
                };
                let plaid_secret = match config.plaid_secret.clone() {
                    Some(s) => s,
                    None => crate::keys::derived_sandbox_secret(&config, "plaid_sandbox")?,
                };
                let sandbox = Sandbox::start(
                    clock.clone(),
                    Arc::new(DbSimStore {
                        db: db.clone(),
                        sealer: sealer.clone(),
                    }),
                    SandboxConfig {
                        ramp_webhook_url: format!("http://{addr}/webhooks/ramp"),
                        ramp_webhook_secret: sandbox::Secret::new(webhook_secret.clone()),
                        qbo_webhook_url: format!("http://{addr}/webhooks/qbo"),
                        qbo_webhook_verifier: sandbox::Secret::new(qbo_verifier.clone()),
                        qbo_webhook_format: Default::default(),
                        plaid_client_id: SANDBOX_PLAID_CLIENT_ID.into(),
                        plaid_secret: sandbox::Secret::new(plaid_secret.clone()),
                        seed: config.sandbox_seed,
                        start: config.sandbox_start,
                        clients: config.sandbox_clients,
                        living: config.sandbox_living,
                        public_base: format!("{public}/sandbox"),
                        // RowCol's own callbacks, and any extra ones.
                        redirect_uris: app::model::Rail::ALL
                            .iter()
                            .map(|r| crate::oauth::flow::redirect_uri(&public, *r))
                            .chain(config.sandbox_redirect_uris.iter().cloned())
                            .collect(),
                    },
                )
                .await?;
                // A world stored before the clock row was kept alongside it.
                crate::ports::persist_clock(&db, clock.offset_secs(), clock.now()).await;
                let rails = rails(&config, &http, Some(&base), &plaid_secret);
                (rails, Some(sandbox), webhook_secret, qbo_verifier)
            } else {
                let rails = rails(
                    &config,
                    &http,
                    None,
                    config.plaid_secret.as_deref().unwrap_or_default(),
                );
                (
                    rails,
                    None,
                    config.ramp_webhook_secret.clone().unwrap_or_default(),
                    config.qbo_webhook_verifier.clone().unwrap_or_default(),
                )
            };
        let oauth_http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(crate::rails::http::CONNECT_TIMEOUT)
            .timeout(std::time::Duration::from_millis(config.rail_timeout_ms))
            .build()?;
        // Given, else (a sandbox hosting its simulators) derived, stable per
        // key, as the other sandbox secrets; else none, and every delivery
        // to /webhooks/stripe is refused.
        let stripe_webhook_secret = match config.stripe_webhook_secret.clone() {
            Some(s) => s,
            None if sandbox_mode && !follower => {
                crate::keys::derived_sandbox_secret(&config, "whsec_stripe_sandbox")?
            }
            None => String::new(),
        };
        let providers = match (&sandbox, config.sandbox_rails_url.as_deref()) {
            (Some(sb), _) => Some(crate::oauth::providers::Providers::sandbox(
                &format!("http://{addr}/sandbox"),
                &sb.apps(),
            )),
            (None, Some(base)) if sandbox_mode => Some(
                crate::oauth::providers::Providers::from_sandbox_credentials(&oauth_http, base)
                    .await
                    .context("reading the simulators' apps from ROWCOL_SANDBOX_RAILS_URL")?,
            ),
            _ => Some(crate::oauth::providers::Providers::live(&config)),
        }
        .map(Arc::new);
        let services = Services {
            db: db.clone(),
            clock: clock.clone(),
            sealer: sealer.clone(),
            rails,
            sandbox: sandbox.clone(),
            runner_wake: Arc::new(Notify::new()),
            providers,
            oauth_http,
            onboarding: Arc::new(onboarding),
            public_url: config
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}")),
            ramp_secrets: Default::default(),
            metrics: metrics.clone(),
        };
        // The webhook receiver checks signatures from memory.
        services
            .ramp_secrets
            .reload(&services.db, &services.sealer)
            .await
            .context("loading the Ramp webhook secrets")?;

        // --- ports
        let cash: Arc<dyn CashRefresher> = Arc::new(PlaidCash {
            services: services.clone(),
        });
        let ledger: Arc<dyn app::ssr::ports::LedgerCheck> = Arc::new(QboLedger {
            services: services.clone(),
        });
        let bill_pay: Arc<dyn app::ssr::ports::BillPayStop> = Arc::new(RampStop {
            services: services.clone(),
        });
        let sandbox_control = sandbox.clone().map(|sb| {
            Arc::new(SandboxClock {
                sandbox: sb,
                services: services.clone(),
            }) as Arc<dyn SandboxControl>
        });

        // --- app state
        let state = ServerState {
            app: AppState {
                leptos_options: leptos_options(addr),
                db: db.clone(),
                clock: clock.clone(),
                sealer: sealer.clone(),
                cash,
                ledger,
                bill_pay,
                sandbox: sandbox_control,
                sign_in: app::ssr::sign_in::SignInGuard::new(config.trusted_proxies.clone()),
                metrics,
            },
            services,
            ramp_webhook_secret: webhook_secret.into(),
            qbo_webhook_verifier: qbo_verifier.into(),
            stripe_webhook_secret: stripe_webhook_secret.into(),
            webhook_refusals: Default::default(),
            plaid_keys: Default::default(),
            metrics_token: config.metrics_token.clone().map(Into::into),
        };

        let mut demo_password = None;
        if let Some(sb) = &sandbox {
            let password = config.demo_password.clone().unwrap_or_else(|| {
                use rand::distributions::{Alphanumeric, DistString};
                Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
            });
            crate::seed::seed_demo(
                &db,
                &sealer,
                &sb.world().await,
                &password,
                config.sandbox_unconnected,
                clock.now(),
            )
            .await?;
            demo_password = Some(password);
        }

        // --- router
        let sessions = session_store(&config.database_url)
            .await
            .context("opening the session store")?;
        // Connect buttons lead to the providers' consent pages and Plaid Link.
        let providers = state.services.providers.clone();
        let mut leads_to: Vec<String> = providers
            .iter()
            .flat_map(|p| {
                [
                    p.qbo.authorize_url.clone(),
                    p.ramp.authorize_url.clone(),
                    p.stripe.authorize_url.clone(),
                ]
            })
            .collect();
        leads_to.push(config.plaid_base_url.clone());
        leads_to.extend(config.plaid_link_origins.iter().cloned());
        let security = Arc::new(security.with_form_actions(leads_to.iter().map(String::as_str)));
        let router = build_router(state.clone(), &config, sessions.clone(), security);
        Ok(Application {
            listener,
            addr,
            state,
            router,
            worker: config.worker,
            follow_clock: follower,
            sessions,
            demo_password,
        })
    }

    /// Serve until `shutdown` flips to true; the worker stops with it.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        if self.follow_clock {
            let (db, clock) = (self.state.app.db.clone(), self.state.app.clock.clone());
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(crate::ports::FOLLOW_CLOCK_EVERY) => {}
                        _ = stop.changed() => break,
                    }
                    if *stop.borrow() {
                        break;
                    }
                    crate::ports::follow_clock(&db, &clock).await;
                }
            });
        }
        if self.worker {
            tokio::spawn(crate::jobs::runner::run_forever(
                self.state.services.clone(),
                shutdown.clone(),
            ));
        }
        // Expired sessions are deleted hourly by every instance (the delete
        // is idempotent, so no coordination is needed).
        let sessions = self.sessions.clone();
        let sweeper = tokio::spawn(async move {
            use tower_sessions::session_store::ExpiredDeletion;
            if let Err(e) = sessions
                .continuously_delete_expired(std::time::Duration::from_secs(3600))
                .await
            {
                tracing::warn!(error = %e, "expired-session sweeper stopped");
            }
        });
        // Ramp webhook secrets another instance stored or forgot
        // (webhooks/secrets.rs).
        let secrets = {
            let svc = self.state.services.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(crate::webhooks::secrets::RELOAD_EVERY);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    svc.ramp_secrets.reload_logged(&svc.db, &svc.sealer).await;
                }
            })
        };
        // Refused webhooks are summarised per minute (webhooks/refusals.rs).
        let refusals = {
            let state = self.state.clone();
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    let now = state.services.clock.now();
                    crate::webhooks::refusals::write(
                        &state.services,
                        state.webhook_refusals.finished(now),
                    )
                    .await;
                }
            })
        };
        // The peer address is the sign-in throttle's client address (unless
        // a trusted proxy says otherwise).
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await?;
        sweeper.abort();
        refusals.abort();
        secrets.abort();
        crate::webhooks::refusals::write(&self.state.services, self.state.webhook_refusals.all())
            .await;
        Ok(())
    }
}

fn build_router(
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
        .merge(webhooks)
        .route("/connect/stripe/key", post(crate::oauth::flow::stripe_key))
        .route("/connect/{rail}/start", post(crate::oauth::flow::start))
        .route(
            "/connect/{rail}/callback",
            get(crate::oauth::flow::callback),
        )
        .route(
            "/connections/{client}/{rail}/disconnect",
            post(crate::oauth::flow::disconnect),
        )
        .route(
            "/connections/{client}/sync",
            post(crate::oauth::flow::sync_now),
        )
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
async fn session_store(url: &str) -> anyhow::Result<SessionStore> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_the_sandbox_is_kept_to_loopback() {
        let mut config = Config::defaults();
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert!(refuse_public_sandbox(&config, at("127.0.0.1:3000")).is_ok());
        assert!(refuse_public_sandbox(&config, at("[::1]:3000")).is_ok());
        assert!(refuse_public_sandbox(&config, at("[::ffff:127.0.0.1]:3000")).is_ok());
        assert!(refuse_public_sandbox(&config, at("0.0.0.0:3000")).is_err());
        assert!(refuse_public_sandbox(&config, at("[::]:3000")).is_err());
        assert!(refuse_public_sandbox(&config, at("192.168.1.4:3000")).is_err());
        config.rails = RailsMode::Live;
        assert!(refuse_public_sandbox(&config, at("0.0.0.0:3000")).is_ok());
        config.rails = RailsMode::Sandbox;
        config.allow_public_sandbox = true;
        assert!(refuse_public_sandbox(&config, at("0.0.0.0:3000")).is_ok());
    }

    #[test]
    fn sandbox_key_is_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults();
        config.data_dir = dir.path().display().to_string();
        let first = crate::keys::sealer(&config).unwrap();
        let sealed = first.seal("token", "conn_1");
        let path = dir.path().join("secret.key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A restart reads the same key: what was sealed still opens.
        let second = crate::keys::sealer(&config).unwrap();
        assert_eq!(second.open(&sealed, "conn_1").unwrap(), "token");
    }
}
