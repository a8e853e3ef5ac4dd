//! What the router's handlers receive: the app's state (what server
//! functions see), the services, and the webhook secret.

use crate::services::Services;
use app::ssr::app_state::AppState;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;

#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    pub services: Services,
    pub ramp_webhook_secret: Arc<str>,
    /// The QBO app's webhook verifier token (`intuit-signature`).
    pub qbo_webhook_verifier: Arc<str>,
    /// The Stripe webhook endpoint's secret (`whsec_…`); empty: every
    /// delivery is refused.
    pub stripe_webhook_secret: Arc<str>,
    /// Refused (unsigned, badly signed) webhook deliveries and connect
    /// callbacks with a state RowCol never issued: anyone can send them, so
    /// they are counted and summarised per minute, not written one by one.
    pub webhook_refusals: Arc<crate::webhooks::refusals::Refusals>,
    /// Plaid's webhook verification keys by `kid`.
    pub plaid_keys: Arc<crate::webhooks::plaid::KeyCache>,
    /// `ROWCOL_METRICS_TOKEN`: the bearer `GET /metrics` asks for (unset:
    /// the route answers 404).
    pub metrics_token: Option<Arc<str>>,
    /// Signs audit checkpoints (`GET /audit/checkpoint`); `None` when live
    /// mode has no signing key configured.
    pub audit_signer: Option<Arc<crate::audit_checkpoint::Signer>>,
}

impl FromRef<ServerState> for LeptosOptions {
    fn from_ref(s: &ServerState) -> Self {
        s.app.leptos_options.clone()
    }
}

impl FromRef<ServerState> for AppState {
    fn from_ref(s: &ServerState) -> Self {
        s.app.clone()
    }
}
