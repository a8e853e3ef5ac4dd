//! Which rails this instance talks to, and where: the live APIs, the
//! simulators it hosts itself (sandbox mode), or another instance's
//! simulators (`ROWCOL_SANDBOX_RAILS_URL`). Only base URLs and credentials
//! differ between them.

use crate::config::{Config, RailsMode};
use crate::ports::DbSimStore;
use crate::rails::accounts::{Onboarding, StripeClient};
use crate::rails::http::RailHttp;
use crate::rails::{plaid::PlaidClient, qbo::QboClient, ramp::RampClient, Rails, SecretString};
use app::ssr::clock::Clock;
use app::ssr::crypto::Sealer;
use app::ssr::store::Db;
use sandbox::{Sandbox, SandboxConfig};
use std::net::SocketAddr;
use std::sync::Arc;

/// The rails, the simulators when this instance hosts them, and the
/// webhook secrets the receivers check.
pub(super) struct RailsSetup {
    pub rails: Rails,
    pub onboarding: Onboarding,
    pub sandbox: Option<Sandbox>,
    pub ramp_webhook_secret: String,
    pub qbo_webhook_verifier: String,
}

pub(super) async fn rails_setup(
    config: &Config,
    addr: SocketAddr,
    db: &Db,
    sealer: &Sealer,
    clock: &Clock,
    http: &RailHttp,
) -> anyhow::Result<RailsSetup> {
    let given = |s: &Option<String>| s.clone().unwrap_or_default();
    match (config.rails, config.sandbox_rails_url.as_deref()) {
        (RailsMode::Sandbox, Some(base)) => {
            // Another instance hosts the simulators and has seeded the demo
            // world on this database; validate() made sure the secrets are
            // given (they must be that instance's).
            let base = base.trim_end_matches('/');
            let (rails, onboarding) = rails(config, http, Some(base), &given(&config.plaid_secret));
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
            Ok(RailsSetup {
                rails,
                onboarding,
                sandbox: None,
                ramp_webhook_secret: given(&config.ramp_webhook_secret),
                qbo_webhook_verifier: given(&config.qbo_webhook_verifier),
            })
        }
        (RailsMode::Sandbox, None) => host_simulators(config, addr, db, sealer, clock, http).await,
        _ => {
            let plaid_secret = config.plaid_secret.as_deref().unwrap_or_default();
            let (rails, onboarding) = rails(config, http, None, plaid_secret);
            Ok(RailsSetup {
                rails,
                onboarding,
                sandbox: None,
                ramp_webhook_secret: given(&config.ramp_webhook_secret),
                qbo_webhook_verifier: given(&config.qbo_webhook_verifier),
            })
        }
    }
}

/// Sandbox mode: start the four simulators on this instance (their world
/// kept sealed in the database) and use them at `/sandbox`.
async fn host_simulators(
    config: &Config,
    addr: SocketAddr,
    db: &Db,
    sealer: &Sealer,
    clock: &Clock,
    http: &RailHttp,
) -> anyhow::Result<RailsSetup> {
    let base = format!("http://{addr}/sandbox");
    // Where browsers and outside programs reach this instance.
    let public = config
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{addr}"));
    // Stable across restarts (derived from the key) unless given: outside
    // programs keep using what the sandbox listed. The QBO verifier is given
    // when other instances use these simulators (they must present the
    // same one).
    let secret = |given: &Option<String>, label: &str| match given.clone() {
        Some(s) => Ok(s),
        None => crate::keys::derived_sandbox_secret(config, label),
    };
    let webhook_secret = secret(&config.ramp_webhook_secret, "whsec_sandbox")?;
    let qbo_verifier = secret(&config.qbo_webhook_verifier, "qbo_verifier_sandbox")?;
    let plaid_secret = secret(&config.plaid_secret, "plaid_sandbox")?;
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
                .map(|r| crate::connect::redirect_uri(&public, *r))
                .chain(config.sandbox_redirect_uris.iter().cloned())
                .collect(),
        },
    )
    .await?;
    // A world stored before the clock row was kept alongside it.
    crate::ports::persist_clock(db, clock.offset_secs(), clock.now()).await;
    let (rails, onboarding) = rails(config, http, Some(&base), &plaid_secret);
    Ok(RailsSetup {
        rails,
        onboarding,
        sandbox: Some(sandbox),
        ramp_webhook_secret: webhook_secret,
        qbo_webhook_verifier: qbo_verifier,
    })
}

/// The rails at their base URLs: the sandbox's when it runs, else the
/// configured live ones. Only base URLs and credentials differ.
pub(super) fn rails(
    config: &Config,
    http: &RailHttp,
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
pub(super) fn refuse_public_sandbox(config: &Config, addr: SocketAddr) -> anyhow::Result<()> {
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
