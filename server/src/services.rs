//! The services everything else is built from, constructed first and
//! passed down: the database, the clock, the sealer for rail tokens, the
//! rails, the sandbox (in sandbox mode) and the worker's wake-up signal.
//! Jobs and ports take these; only the router sees the whole server state.
//!
//! Construction order (startup.rs): services → ports (server/src/ports.rs)
//! → app state → router → worker. Nothing is bound late.

use crate::rails::Rails;
use app::ssr::clock::Clock;
use app::ssr::crypto::Sealer;
use app::ssr::store::Db;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct Services {
    pub db: Db,
    pub clock: Clock,
    pub sealer: Sealer,
    pub rails: Rails,
    /// The simulators, in sandbox mode only.
    pub sandbox: Option<sandbox::Sandbox>,
    /// Wakes the job runner (a webhook just landed).
    pub runner_wake: Arc<Notify>,
    /// The providers' OAuth endpoints and RowCol's apps there.
    pub providers: Option<Arc<crate::oauth::providers::Providers>>,
    /// For token endpoints: follows no redirects.
    pub oauth_http: reqwest::Client,
    /// The clients the connect flows use (account names, Plaid Link).
    pub onboarding: Arc<crate::rails::accounts::Onboarding>,
    /// RowCol's own origin (`ROWCOL_PUBLIC_URL`, else `http://<addr>`):
    /// redirect URIs are built from it.
    pub public_url: String,
    /// Ramp subscription secrets in memory: the webhook receiver checks
    /// signatures without a database read (`webhooks/secrets.rs`).
    pub ramp_secrets: Arc<crate::webhooks::secrets::RampSecrets>,
    /// The app's recorder (`GET /metrics`): jobs and webhook processing.
    pub metrics: app::ssr::metrics::Metrics,
    /// Email (`ROWCOL_SMTP_URL`); none when unset.
    pub mailer: Option<crate::notify::mailer::Mailer>,
    /// For Slack-compatible webhook posts: follows no redirects.
    pub webhook_http: reqwest::Client,
}
