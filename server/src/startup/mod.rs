//! Assemble RowCol from (config, listener): database, migrations, rails
//! (simulated or live), state, router, worker. Tests build it on port 0.

mod rails;
mod router;

use crate::config::{Config, RailsMode};
use crate::ports::{PlaidCash, QboLedger, RampStop, SandboxClock};
use crate::router_state::ServerState;
use crate::services::Services;
use anyhow::Context;
use app::ssr::app_state::AppState;
use app::ssr::clock::Clock;
use app::ssr::ports::{CashRefresher, SandboxControl};
use app::ssr::store::Db;
use axum::Router;
use leptos::prelude::*;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

pub struct Application {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub state: ServerState,
    pub router: Router,
    pub worker: bool,
    /// Sandbox mode on another instance's simulators: keep this clock on theirs.
    pub follow_clock: bool,
    pub sessions: router::SessionStore,
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

impl Application {
    /// Build in one direction: services (database, clock, sealer, rails,
    /// sandbox) → ports → app state → router. The worker starts in `run`.
    pub async fn build(config: Config, listener: TcpListener) -> anyhow::Result<Application> {
        config.validate().map_err(anyhow::Error::msg)?;
        let addr = listener.local_addr()?;
        rails::refuse_public_sandbox(&config, addr)?;
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
        let rails::RailsSetup {
            rails,
            onboarding,
            sandbox,
            ramp_webhook_secret: webhook_secret,
            qbo_webhook_verifier: qbo_verifier,
        } = rails::rails_setup(&config, addr, &db, &sealer, &clock, &http).await?;
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
            mailer: match &config.smtp_url {
                Some(url) => Some(
                    crate::notify::mailer::Mailer::new(url, &config.mail_from)
                        .map_err(|e| anyhow::anyhow!("ROWCOL_SMTP_URL: {e}"))?,
                ),
                None => None,
            },
            webhook_http: crate::notify::webhook::client(),
        };
        // The webhook receiver checks signatures from memory.
        services
            .ramp_secrets
            .reload(&services.db, &services.sealer)
            .await
            .context("loading the Ramp webhook secrets")?;

        // --- app state: what server functions see, its ports built from
        // the services.
        let state = ServerState {
            app: app_state(&services, sandbox.clone(), &config, addr, metrics),
            services,
            ramp_webhook_secret: webhook_secret.into(),
            qbo_webhook_verifier: qbo_verifier.into(),
            stripe_webhook_secret: stripe_webhook_secret.into(),
            webhook_refusals: Default::default(),
            plaid_keys: Default::default(),
            metrics_token: config.metrics_token.clone().map(Into::into),
            // Live without ROWCOL_AUDIT_SIGNING_KEY: checkpoints cannot be
            // signed (the route says so); everything else runs.
            audit_signer: crate::audit_checkpoint::Signer::from_config(&config)
                .ok()
                .map(Arc::new),
        };

        let demo_password = match &sandbox {
            Some(sb) => Some(seed_demo_firm(&config, &db, &sealer, &clock, sb).await?),
            None => None,
        };

        // --- router
        let sessions = router::session_store(&config.database_url)
            .await
            .context("opening the session store")?;
        let leads_to = form_destinations(&state, &config);
        let security = Arc::new(security.with_form_actions(leads_to.iter().map(String::as_str)));
        let router = router::build_router(state.clone(), &config, sessions.clone(), security);
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

/// What server functions receive: the database, clock and sealer, and the
/// ports (fresh cash, ledger check, stop at Ramp, the sandbox clock) built
/// from the services.
fn app_state(
    services: &Services,
    sandbox: Option<sandbox::Sandbox>,
    config: &Config,
    addr: SocketAddr,
    metrics: app::ssr::metrics::Metrics,
) -> AppState {
    let cash: Arc<dyn CashRefresher> = Arc::new(PlaidCash {
        services: services.clone(),
    });
    let ledger: Arc<dyn app::ssr::ports::LedgerCheck> = Arc::new(QboLedger {
        services: services.clone(),
    });
    let bill_pay: Arc<dyn app::ssr::ports::BillPayStop> = Arc::new(RampStop {
        services: services.clone(),
    });
    let sandbox_control = sandbox.map(|sb| {
        Arc::new(SandboxClock {
            sandbox: sb,
            services: services.clone(),
        }) as Arc<dyn SandboxControl>
    });
    AppState {
        leptos_options: leptos_options(addr),
        db: services.db.clone(),
        clock: services.clock.clone(),
        sealer: services.sealer.clone(),
        cash,
        ledger,
        bill_pay,
        sandbox: sandbox_control,
        sign_in: app::ssr::sign_in::SignInGuard::new(config.trusted_proxies.clone()),
        metrics,
        live: config.rails == crate::config::RailsMode::Live,
        mail: services.mailer.is_some(),
        public_url: services.public_url.clone(),
    }
}

/// Sandbox mode: the demo firm, its users and the simulators' clients
/// (idempotent); returns the demo users' password (given, or generated).
async fn seed_demo_firm(
    config: &Config,
    db: &Db,
    sealer: &app::ssr::crypto::Sealer,
    clock: &Clock,
    sb: &sandbox::Sandbox,
) -> anyhow::Result<String> {
    let password = config.demo_password.clone().unwrap_or_else(|| {
        use rand::distributions::{Alphanumeric, DistString};
        Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
    });
    crate::seed::seed_demo(
        db,
        sealer,
        &sb.world().await,
        &password,
        config.sandbox_unconnected,
        clock.now(),
    )
    .await?;
    Ok(password)
}

/// Where RowCol's forms may lead (the content security policy's
/// form-action): the providers' consent pages and Plaid Link.
fn form_destinations(state: &ServerState, config: &Config) -> Vec<String> {
    let mut leads_to: Vec<String> = state
        .services
        .providers
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
    leads_to
}

#[cfg(test)]
mod tests {
    use super::rails::refuse_public_sandbox;
    use crate::config::{Config, RailsMode};
    use std::net::SocketAddr;
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
