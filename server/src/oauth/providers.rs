//! Where each provider's OAuth endpoints are and RowCol's app credentials
//! there. Configuration, never constants: in live mode every value comes from
//! the environment; in sandbox mode from the simulators' own apps. Nothing
//! downstream knows which.

use crate::rails::SecretString;
use app::model::Rail;

/// One provider's authorization-code endpoints and RowCol's app there.
#[derive(Clone, Debug)]
pub struct OAuthProvider {
    pub rail: Rail,
    /// Sent on the authorize URL (Stripe: the app's `ca_…` id).
    pub client_id: String,
    /// How RowCol authenticates at the token endpoint: Basic
    /// `client_id:client_secret` (QBO, Ramp), or Stripe's secret key as the
    /// Basic user with an empty password (`token_client_id` set).
    pub client_secret: SecretString,
    /// Stripe: the secret key authenticates the token call, not the app id.
    pub token_client_id: Option<SecretString>,
    pub authorize_url: String,
    pub token_url: String,
    /// QBO: JSON `{token}`; Ramp: form `token=`; Stripe: deauthorize
    /// (`client_id`, `stripe_user_id`).
    pub revoke_url: String,
    pub scopes: Vec<String>,
    /// Send a PKCE S256 challenge (where the provider documents it).
    pub pkce: bool,
}

/// Plaid Link: the API does the work (link tokens, exchange); RowCol only
/// needs its app name for `client_name`.
#[derive(Clone, Debug)]
pub struct Providers {
    pub qbo: OAuthProvider,
    pub ramp: OAuthProvider,
    pub stripe: OAuthProvider,
    /// Stripe's API base (`https://api.stripe.com`), for `GET /v1/account`.
    pub stripe_api: String,
}

impl Providers {
    pub fn get(&self, rail: Rail) -> Option<&OAuthProvider> {
        match rail {
            Rail::Qbo => Some(&self.qbo),
            Rail::Ramp => Some(&self.ramp),
            Rail::Stripe => Some(&self.stripe),
            Rail::Plaid => None,
        }
    }
}

/// The scopes RowCol asks for: read bills, create bills, vendors, the entity.
pub const QBO_SCOPES: &[&str] = &["com.intuit.quickbooks.accounting"];
pub const RAMP_SCOPES: &[&str] = &[
    "bills:read",
    "bills:write",
    "business:read",
    "entities:read",
    "vendors:read",
];
/// Stripe Apps' scopes are set by the app manifest, not the URL.
pub const STRIPE_SCOPES: &[&str] = &[];

pub fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Providers {
    /// Live mode: everything from configuration. A provider whose app is not
    /// configured still appears (its connect button then fails with a clear
    /// message from the provider's token endpoint or the missing id).
    pub fn live(c: &crate::config::Config) -> Providers {
        let ramp_base = c.ramp_base_url.trim_end_matches('/');
        let stripe_base = c.stripe_base_url.trim_end_matches('/').to_owned();
        let secret = |s: &Option<String>| SecretString::new(s.clone().unwrap_or_default());
        Providers {
            qbo: OAuthProvider {
                rail: Rail::Qbo,
                client_id: c.qbo_client_id.clone(),
                client_secret: secret(&c.qbo_client_secret),
                token_client_id: None,
                authorize_url: c.qbo_authorize_url.clone(),
                token_url: c.qbo_token_url.clone(),
                revoke_url: c.qbo_revoke_url.clone(),
                scopes: scopes(QBO_SCOPES),
                pkce: false,
            },
            ramp: OAuthProvider {
                rail: Rail::Ramp,
                client_id: c.ramp_client_id.clone(),
                client_secret: secret(&c.ramp_client_secret),
                token_client_id: None,
                authorize_url: c.ramp_authorize_url.clone(),
                token_url: c
                    .ramp_token_url
                    .clone()
                    .unwrap_or_else(|| format!("{ramp_base}/developer/v1/token")),
                revoke_url: format!("{ramp_base}/developer/v1/token/revoke"),
                scopes: scopes(RAMP_SCOPES),
                pkce: c.ramp_oauth_pkce,
            },
            stripe: OAuthProvider {
                rail: Rail::Stripe,
                client_id: c.stripe_client_id.clone(),
                client_secret: secret(&c.stripe_secret_key),
                token_client_id: Some(secret(&c.stripe_secret_key)),
                authorize_url: c.stripe_authorize_url.clone(),
                token_url: format!("{stripe_base}/v1/oauth/token"),
                revoke_url: format!("{stripe_base}/v1/oauth/deauthorize"),
                scopes: scopes(STRIPE_SCOPES),
                pkce: false,
            },
            stripe_api: stripe_base,
        }
    }
}

impl Providers {
    /// Sandbox mode: the simulated providers under `base`
    /// (`http://host:port/sandbox`), with their apps' credentials. The same
    /// paths `GET {base}/control/credentials` lists.
    pub fn sandbox(base: &str, apps: &sandbox::ProviderApps) -> Providers {
        let b = base.trim_end_matches('/');
        Providers {
            qbo: OAuthProvider {
                rail: Rail::Qbo,
                client_id: apps.qbo.client_id.clone(),
                client_secret: SecretString::new(apps.qbo.client_secret.expose()),
                token_client_id: None,
                authorize_url: format!("{b}/intuit/connect/oauth2"),
                token_url: format!("{b}/qbo/oauth2/v1/tokens/bearer"),
                revoke_url: format!("{b}/qbo/v2/oauth2/tokens/revoke"),
                scopes: scopes(QBO_SCOPES),
                pkce: false,
            },
            ramp: OAuthProvider {
                rail: Rail::Ramp,
                client_id: apps.ramp.client_id.clone(),
                client_secret: SecretString::new(apps.ramp.client_secret.expose()),
                token_client_id: None,
                authorize_url: format!("{b}/ramp-app/v1/authorize"),
                token_url: format!("{b}/ramp/developer/v1/token"),
                revoke_url: format!("{b}/ramp/developer/v1/token/revoke"),
                scopes: scopes(RAMP_SCOPES),
                // The simulator checks S256 PKCE: exercise that path here.
                pkce: true,
            },
            stripe: OAuthProvider {
                rail: Rail::Stripe,
                client_id: apps.stripe.client_id.clone(),
                client_secret: SecretString::new(apps.stripe.secret_key.expose()),
                token_client_id: Some(SecretString::new(apps.stripe.secret_key.expose())),
                authorize_url: format!("{b}/stripe-marketplace/oauth/v2/authorize"),
                token_url: format!("{b}/stripe/v1/oauth/token"),
                revoke_url: format!("{b}/stripe/v1/oauth/deauthorize"),
                scopes: scopes(STRIPE_SCOPES),
                pkce: false,
            },
            stripe_api: format!("{b}/stripe"),
        }
    }

    /// An instance using another's simulators reads their apps the way an
    /// outside program does: `GET {base}/control/credentials`.
    pub async fn from_sandbox_credentials(
        http: &reqwest::Client,
        base: &str,
    ) -> anyhow::Result<Providers> {
        let b = base.trim_end_matches('/');
        let v: serde_json::Value = http
            .get(format!("{b}/control/credentials"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let s = |p: &str| -> anyhow::Result<String> {
            v.pointer(p)
                .and_then(|x| x.as_str())
                .map(str::to_owned)
                .ok_or_else(|| anyhow::anyhow!("credentials lack {p}"))
        };
        let apps = sandbox::ProviderApps {
            qbo: sandbox::OAuthApp {
                client_id: s("/qbo/client_id")?,
                client_secret: sandbox::Secret::new(s("/qbo/client_secret")?),
            },
            ramp: sandbox::OAuthApp {
                client_id: s("/ramp/client_id")?,
                client_secret: sandbox::Secret::new(s("/ramp/client_secret")?),
            },
            stripe: sandbox::StripeApp {
                client_id: s("/stripe/client_id")?,
                secret_key: sandbox::Secret::new(s("/stripe/secret_key")?),
            },
        };
        Ok(Providers::sandbox(b, &apps))
    }
}
