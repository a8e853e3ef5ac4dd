//! Application state, injected into every server function and handler
//! through context (never global), so tests hand each app its own database.

use super::clock::Clock;
use super::crypto::Sealer;
use super::ports::{BillPayStop, CashRefresher, LedgerCheck, SandboxControl};
use super::sign_in::SignInGuard;
use super::store::Db;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub clock: Clock,
    pub sealer: Sealer,
    pub cash: Arc<dyn CashRefresher>,
    /// The ledger's current view of bills being approved.
    pub ledger: Arc<dyn LedgerCheck>,
    /// Stopping a released payment on Ramp.
    pub bill_pay: Arc<dyn BillPayStop>,
    /// Present only in sandbox mode.
    pub sandbox: Option<Arc<dyn SandboxControl>>,
    /// Sign-in throttling and the bound on concurrent password hashing.
    pub sign_in: SignInGuard,
    /// What `GET /metrics` reports; this app's own recorder.
    pub metrics: super::metrics::Metrics,
    /// Live mode (`ROWCOL_RAILS=live`): admins must use the second factor.
    /// (Not the same as having no sandbox: an instance on another
    /// instance's simulators has none and is still a sandbox.)
    pub live: bool,
    /// Email is configured (`ROWCOL_SMTP_URL`): invitations, reset links
    /// and notifications are also sent by email.
    #[from_ref(skip)]
    pub mail: bool,
    /// RowCol's own origin, for links in messages (`ROWCOL_PUBLIC_URL`,
    /// else `http://<addr>`).
    #[from_ref(skip)]
    pub public_url: String,
}
