//! OAuth at the simulated providers (QBO, Ramp, Stripe): the provider apps,
//! pending authorization requests, authorization codes and grants, kept in
//! [`SimState::oauth`](crate::sim_state::SimState) and persisted with it. Token
//! and code times are wall-clock (`chrono::Utc::now()`), never the sandbox
//! clock, so a live instance on the wall clock can use what is issued here.
//!
//! * `grants`: the grant model (issue, exchange, refresh with rotation,
//!   revoke, expire) on plain state, no I/O.
//! * `pages`: the consent pages (sign in, Allow / Deny, redirect).
//! * `token`: the token and revoke endpoints of QBO and Ramp (mounted inside
//!   their rail routers, behind the rail fault layer).
//! * `control`: `/control/oauth/*` and `GET /control/credentials`.

pub(crate) mod control;
pub(crate) mod grants;
pub(crate) mod pages;
pub(crate) mod token;

use crate::sim_state::SimState;
use crate::world::random_token;
use crate::{Sandbox, Secret, SimRail};
use chrono::{DateTime, Utc};
pub use grants::{AccessTok, AuthCode, Grant, GrantOwner, OAuthState, PendingAuth, PrevRefresh};
use serde::{Deserialize, Serialize};

/// The apps registered at the simulated providers (RowCol's, and any outside
/// program's: one app per provider).
#[derive(Clone, Debug)]
pub struct ProviderApps {
    pub qbo: OAuthApp,
    pub ramp: OAuthApp,
    pub stripe: StripeApp,
}

#[derive(Clone, Debug)]
pub struct OAuthApp {
    pub client_id: String,
    pub client_secret: Secret,
}

#[derive(Clone, Debug)]
pub struct StripeApp {
    /// `ca_…`
    pub client_id: String,
    /// `sk_test_…`: the app developer's secret key (token endpoint auth).
    pub secret_key: Secret,
}

/// The persisted form of [`ProviderApps`].
#[derive(Clone, Serialize, Deserialize)]
pub struct AppsRec {
    pub qbo: AppRec,
    pub ramp: AppRec,
    pub stripe: AppRec,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AppRec {
    pub name: String,
    pub client_id: String,
    /// QBO / Ramp: the client secret; Stripe: the app's secret key.
    pub secret: String,
}

/// A client's Stripe account.
#[derive(Clone, Serialize, Deserialize)]
pub struct StripeAccountRec {
    /// `acct_…`
    pub id: String,
    /// The world client it belongs to (its name).
    pub client: String,
    pub display_name: String,
    /// `rk_test_…`: a restricted key of the account (the paste-a-key way).
    pub restricted_key: String,
}

/// Tunables of the simulated providers (`POST /control/oauth/settings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuthSettings {
    /// How long a rotated-away QBO refresh token keeps working (0: it dies at
    /// once).
    pub qbo_refresh_grace_secs: u32,
    /// `expires_in` of Ramp access tokens.
    pub ramp_access_expires_in: u32,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            qbo_refresh_grace_secs: 0,
            ramp_access_expires_in: 3600,
        }
    }
}

/// The demo sign-in at each provider (listed by `/control/credentials`).
pub const QBO_SIGN_IN: (&str, &str) = ("owner@clients.test", "intuit-sandbox");
pub const RAMP_SIGN_IN: (&str, &str) = ("admin@clients.test", "ramp-sandbox");
pub const STRIPE_SIGN_IN: (&str, &str) = ("owner@clients.test", "stripe-sandbox");
pub const PLAID_SIGN_IN: (&str, &str) = ("user_good", "pass_good");

/// The name the apps show on the consent pages.
pub const APP_NAME: &str = "RowCol";

fn alnum(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

fn new_apps() -> AppsRec {
    let app = |client_id: String, secret: String| AppRec {
        name: APP_NAME.into(),
        client_id,
        secret,
    };
    AppsRec {
        qbo: app(format!("AB{}", alnum(48)), alnum(40)),
        ramp: app(random_token("ramp_id_"), random_token("ramp_sec_")),
        stripe: app(
            format!("ca_{}", alnum(32)),
            format!("sk_test_{}", alnum(99)),
        ),
    }
}

/// Fill in what a state saved before OAuth existed lacks (and what a fresh
/// world needs): the apps, a Stripe account per client, and the seeded
/// grant (owner RowCol) of each client for QBO, Ramp and Stripe. The QBO and
/// Ramp seeded grants keep the client's old static access token as their
/// first access token, so a RowCol that stored it keeps working. Returns
/// whether anything changed (then the caller saves).
pub(crate) fn ensure(st: &mut SimState, now: DateTime<Utc>) -> bool {
    let mut changed = false;
    if st.oauth.apps.is_none() {
        st.oauth.apps = Some(new_apps());
        changed = true;
    }
    for i in 0..st.clients.len() {
        let name = st.clients[i].name.clone();
        if !st.oauth.stripe_accounts.iter().any(|a| a.client == name) {
            st.oauth.stripe_accounts.push(StripeAccountRec {
                id: format!("acct_{}", alnum(16)),
                client: name.clone(),
                display_name: name.clone(),
                restricted_key: format!("rk_test_{}", alnum(99)),
            });
            changed = true;
        }
        let accounts = [
            (
                SimRail::Qbo,
                st.clients[i].qbo.realm_id.clone(),
                Some(st.clients[i].qbo.access_token.clone()),
            ),
            (
                SimRail::Ramp,
                st.clients[i].ramp.business_id.clone(),
                Some(st.clients[i].ramp.access_token.clone()),
            ),
            (
                SimRail::Stripe,
                st.oauth
                    .stripe_account_of(&name)
                    .map(|a| a.id.clone())
                    .unwrap_or_default(),
                None,
            ),
        ];
        for (rail, account, access) in accounts {
            if account.is_empty() || st.oauth.seeded(rail, &account).is_some() {
                continue;
            }
            let scope = grants::default_scope(rail).to_owned();
            let id = st
                .oauth
                .issue(rail, &account, GrantOwner::Rowcol, &scope, now, access);
            if let Some(g) = st.oauth.grants.iter_mut().find(|g| g.id == id) {
                g.seeded = true;
            }
            changed = true;
        }
    }
    changed
}

impl AppsRec {
    pub(crate) fn get(&self, rail: SimRail) -> Option<&AppRec> {
        match rail {
            SimRail::Qbo => Some(&self.qbo),
            SimRail::Ramp => Some(&self.ramp),
            SimRail::Stripe => Some(&self.stripe),
            SimRail::Plaid => None,
        }
    }

    pub(crate) fn public(&self) -> ProviderApps {
        let app = |a: &AppRec| OAuthApp {
            client_id: a.client_id.clone(),
            client_secret: Secret::new(a.secret.clone()),
        };
        ProviderApps {
            qbo: app(&self.qbo),
            ramp: app(&self.ramp),
            stripe: StripeApp {
                client_id: self.stripe.client_id.clone(),
                secret_key: Secret::new(self.stripe.secret.clone()),
            },
        }
    }
}

/// Whether `account` is one of the world's accounts on `rail` (a realm, a
/// Ramp business, a Stripe account).
pub(crate) fn account_exists(st: &SimState, rail: SimRail, account: &str) -> bool {
    match rail {
        SimRail::Qbo => st.clients.iter().any(|c| c.qbo.realm_id == account),
        SimRail::Ramp => st.clients.iter().any(|c| c.ramp.business_id == account),
        SimRail::Stripe => st.oauth.stripe_accounts.iter().any(|a| a.id == account),
        SimRail::Plaid => false,
    }
}

/// The world's accounts on `rail` as (value, label), for the consent page.
pub(crate) fn account_choices(st: &SimState, rail: SimRail) -> Vec<(String, String)> {
    match rail {
        SimRail::Qbo => st
            .clients
            .iter()
            .map(|c| (c.qbo.realm_id.clone(), c.name.clone()))
            .collect(),
        SimRail::Ramp => st
            .clients
            .iter()
            .map(|c| (c.ramp.business_id.clone(), c.ramp.entity.name.clone()))
            .collect(),
        SimRail::Stripe => st
            .oauth
            .stripe_accounts
            .iter()
            .map(|a| (a.id.clone(), a.display_name.clone()))
            .collect(),
        SimRail::Plaid => vec![],
    }
}

impl Sandbox {
    /// The provider apps (generated once, persisted, stable across restarts).
    pub fn apps(&self) -> ProviderApps {
        self.inner.apps.clone()
    }

    /// Consent withdrawn at the provider: every grant for `account` on `rail`
    /// dies (API calls 401, refresh `invalid_grant`). Errors for an unknown
    /// account or a rail without OAuth (Plaid).
    pub async fn revoke_consent(&self, rail: SimRail, account: &str) -> anyhow::Result<()> {
        let mut st = self.inner.state.lock().await;
        if !account_exists(&st, rail, account) {
            anyhow::bail!("no {rail:?} account {account}");
        }
        st.oauth.revoke_account(rail, account);
        self.persist(&st).await
    }

    /// How many live grants `account` has on `rail`: the apps a provider's
    /// "connected apps" page would list for it (tests read it to prove a
    /// grant was given back).
    pub async fn live_grants(&self, rail: SimRail, account: &str) -> usize {
        self.inner.state.lock().await.oauth.live_for(rail, account)
    }

    /// Every access token for `account` on `rail` expires now (refresh still
    /// works).
    pub async fn expire_access_tokens(&self, rail: SimRail, account: &str) -> anyhow::Result<()> {
        let mut st = self.inner.state.lock().await;
        if !account_exists(&st, rail, account) {
            anyhow::bail!("no {rail:?} account {account}");
        }
        st.oauth.expire_account(rail, account, Utc::now());
        self.persist(&st).await
    }

    pub async fn oauth_settings(&self) -> OAuthSettings {
        self.inner.state.lock().await.oauth.settings
    }

    pub async fn set_oauth_settings(&self, s: OAuthSettings) -> anyhow::Result<()> {
        let mut st = self.inner.state.lock().await;
        st.oauth.settings = s;
        self.persist(&st).await
    }
}
