//! Configuration: flags and environment, typed and validated before the port
//! is bound. Secrets are redacted in `Debug`.

use clap::{Parser, Subcommand, ValueEnum};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RailsMode {
    /// Built-in simulators of QBO, Ramp and Plaid, served under /sandbox.
    Sandbox,
    /// The real rails, at the configured base URLs.
    Live,
}

#[derive(Parser, Clone)]
#[command(
    name = "rowcol",
    about = "RowCol: the financial control plane for CAS firms"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Serve the console, API, webhooks and background jobs (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Live mode: create a firm and its first admin.
    CreateFirm {
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin_email: String,
        /// The admin's password (or ROWCOL_ADMIN_PASSWORD).
        #[arg(long, env = "ROWCOL_ADMIN_PASSWORD", hide_env_values = true)]
        admin_password: String,
    },
    /// Add a person to an existing firm (an advisor or viewer, or another
    /// admin).
    AddUser {
        /// The firm's exact name.
        #[arg(long)]
        firm: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// admin, advisor or viewer.
        #[arg(long)]
        role: String,
        /// Their password (or ROWCOL_USER_PASSWORD); at least 12 characters.
        #[arg(long, env = "ROWCOL_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Re-hash every firm's audit chain from its first entry, check the
    /// firm's stored head, and name the first broken entry (exit 1).
    VerifyAudit {
        /// Re-hash only the entries after the last verified checkpoint.
        /// Faster, but it trusts the checkpoint, which lives in the same
        /// database: an edit at or before it goes unseen.
        #[arg(long)]
        incremental: bool,
        /// Also check a signed checkpoint file (from `audit-checkpoint`):
        /// each firm's entry at the checkpoint must still have the signed
        /// hash, which a log rewritten and re-hashed end to end does not.
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Sign each firm's audit chain head (Ed25519, ROWCOL_AUDIT_SIGNING_KEY)
    /// after re-hashing the chain, and write the checkpoint file an auditor
    /// keeps (to stdout, or to --out).
    AuditCheckpoint {
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Re-seal every stored secret under the current key. With
    /// `--new-key`, that key becomes the current one (the configured key
    /// opens what is stored) and, in sandbox mode, replaces data/secret.key.
    RotateKey {
        /// The new key (base64, 32 bytes), or ROWCOL_NEW_ENCRYPTION_KEY.
        #[arg(long, env = "ROWCOL_NEW_ENCRYPTION_KEY", hide_env_values = true)]
        new_key: Option<String>,
    },
}

#[derive(Parser, Clone)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "ROWCOL_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: String,
    /// `sqlite://path` (default, a file under data/) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/rowcol.db")]
    pub database_url: String,
    /// Which rails to talk to.
    #[arg(long, env = "ROWCOL_RAILS", value_enum, default_value = "sandbox")]
    pub rails: RailsMode,
    /// The demo users' password (sandbox only). Random and printed when unset.
    #[arg(long, env = "ROWCOL_DEMO_PASSWORD", hide_env_values = true)]
    pub demo_password: Option<String>,
    /// Base64 32-byte key sealing rail tokens. Sandbox: generated and kept
    /// in data/secret.key when unset. Live: required.
    #[arg(long, env = "ROWCOL_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// Ramp webhook subscription secret (live). Sandbox generates one.
    #[arg(long, env = "ROWCOL_RAMP_WEBHOOK_SECRET", hide_env_values = true)]
    pub ramp_webhook_secret: Option<String>,
    /// QBO webhook verifier token (live; the developer portal shows it).
    /// Sandbox derives one and gives it to the simulated QBO app.
    #[arg(long, env = "ROWCOL_QBO_WEBHOOK_VERIFIER", hide_env_values = true)]
    pub qbo_webhook_verifier: Option<String>,
    /// The Stripe webhook endpoint's signing secret (`whsec_…`, the Dashboard
    /// shows it). Sandbox: derived from the key. Live and unset: every
    /// delivery to /webhooks/stripe is refused.
    #[arg(long, env = "ROWCOL_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// Bearer token for `GET /metrics` (Prometheus). Unset: no metrics route.
    #[arg(long, env = "ROWCOL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    #[arg(
        long,
        env = "ROWCOL_RAMP_BASE_URL",
        default_value = "https://api.ramp.com"
    )]
    pub ramp_base_url: String,
    #[arg(
        long,
        env = "ROWCOL_QBO_BASE_URL",
        default_value = "https://quickbooks.api.intuit.com"
    )]
    pub qbo_base_url: String,
    #[arg(
        long,
        env = "ROWCOL_PLAID_BASE_URL",
        default_value = "https://production.plaid.com"
    )]
    pub plaid_base_url: String,
    #[arg(long, env = "ROWCOL_PLAID_CLIENT_ID", default_value = "")]
    pub plaid_client_id: String,
    #[arg(long, env = "ROWCOL_PLAID_SECRET", hide_env_values = true)]
    pub plaid_secret: Option<String>,
    /// QuickBooks Online OAuth app (live): client id and secret, and
    /// Intuit's endpoints.
    #[arg(long, env = "ROWCOL_QBO_CLIENT_ID", default_value = "")]
    pub qbo_client_id: String,
    #[arg(long, env = "ROWCOL_QBO_CLIENT_SECRET", hide_env_values = true)]
    pub qbo_client_secret: Option<String>,
    #[arg(
        long,
        env = "ROWCOL_QBO_AUTHORIZE_URL",
        default_value = "https://appcenter.intuit.com/connect/oauth2"
    )]
    pub qbo_authorize_url: String,
    #[arg(
        long,
        env = "ROWCOL_QBO_TOKEN_URL",
        default_value = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
    )]
    pub qbo_token_url: String,
    #[arg(
        long,
        env = "ROWCOL_QBO_REVOKE_URL",
        default_value = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
    )]
    pub qbo_revoke_url: String,
    /// Ramp OAuth app (live). Token and revoke URLs default to the API host.
    #[arg(long, env = "ROWCOL_RAMP_CLIENT_ID", default_value = "")]
    pub ramp_client_id: String,
    #[arg(long, env = "ROWCOL_RAMP_CLIENT_SECRET", hide_env_values = true)]
    pub ramp_client_secret: Option<String>,
    #[arg(
        long,
        env = "ROWCOL_RAMP_AUTHORIZE_URL",
        default_value = "https://app.ramp.com/v1/authorize"
    )]
    pub ramp_authorize_url: String,
    /// Default: `{ROWCOL_RAMP_BASE_URL}/developer/v1/token`.
    #[arg(long, env = "ROWCOL_RAMP_TOKEN_URL")]
    pub ramp_token_url: Option<String>,
    /// Send a PKCE challenge to Ramp's authorize endpoint.
    #[arg(long, env = "ROWCOL_RAMP_OAUTH_PKCE", default_value_t = false, action = clap::ArgAction::Set)]
    pub ramp_oauth_pkce: bool,
    /// Stripe Apps OAuth (live): the app's `ca_…` id and the developer's
    /// secret key (`sk_…`), the install link and the API host.
    #[arg(long, env = "ROWCOL_STRIPE_CLIENT_ID", default_value = "")]
    pub stripe_client_id: String,
    #[arg(long, env = "ROWCOL_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    #[arg(
        long,
        env = "ROWCOL_STRIPE_AUTHORIZE_URL",
        default_value = "https://marketplace.stripe.com/oauth/v2/authorize"
    )]
    pub stripe_authorize_url: String,
    #[arg(
        long,
        env = "ROWCOL_STRIPE_BASE_URL",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_base_url: String,
    /// Where Plaid's Hosted Link pages are served (comma separated origins),
    /// besides the Plaid API host: the connect button's redirect leads there.
    #[arg(
        long,
        env = "ROWCOL_PLAID_LINK_ORIGINS",
        value_delimiter = ',',
        default_value = "https://secure.plaid.com,https://hosted.plaid.com"
    )]
    pub plaid_link_origins: Vec<String>,
    /// Extra redirect URIs the sandbox's simulated apps accept (comma
    /// separated), for a live instance using this sandbox as its providers.
    #[arg(long, env = "ROWCOL_SANDBOX_REDIRECT_URIS", value_delimiter = ',')]
    pub sandbox_redirect_uris: Vec<String>,
    /// Old encryption keys (comma separated, base64) still accepted for
    /// opening values sealed before a rotation; new values are sealed
    /// with ROWCOL_ENCRYPTION_KEY.
    #[arg(
        long,
        env = "ROWCOL_PREVIOUS_ENCRYPTION_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub previous_encryption_keys: Vec<String>,
    /// Base64 32-byte Ed25519 seed signing audit checkpoints. Sandbox:
    /// derived from the encryption key when unset. Live: required to sign.
    #[arg(long, env = "ROWCOL_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,
    /// Sandbox: the first day of a fresh demo world (YYYY-MM-DD). The world
    /// is a function of this date and the seed; tests pin it. Unset: today.
    /// A world already stored in the database keeps its own clock.
    #[arg(long, env = "ROWCOL_SANDBOX_START")]
    pub sandbox_start: Option<chrono::NaiveDate>,
    /// Sandbox: the seed the demo world is generated from.
    #[arg(long, env = "ROWCOL_SANDBOX_SEED", default_value_t = sandbox::world::DEFAULT_SEED)]
    pub sandbox_seed: u64,
    /// Sandbox: how many demo clients a fresh world has (2 to 44).
    #[arg(long, env = "ROWCOL_SANDBOX_CLIENTS", default_value_t = sandbox::world::CLIENT_NAMES.len())]
    pub sandbox_clients: usize,
    /// Sandbox: a fresh world keeps living as the clock moves (new bills,
    /// bills paid by hand, edited or deleted in QBO; a couple of bank
    /// logins expired at the start). `false` for a world that changes only
    /// as RowCol and its tests make it.
    #[arg(long, env = "ROWCOL_SANDBOX_LIVING", default_value_t = true, action = clap::ArgAction::Set)]
    pub sandbox_living: bool,
    /// Sandbox: how many of the world's companies (the last ones) the demo
    /// firm is NOT connected to, left for "Add a client from QuickBooks"
    /// (at least two stay connected, whatever the number).
    #[arg(long, env = "ROWCOL_SANDBOX_UNCONNECTED", default_value_t = 2)]
    pub sandbox_unconnected: usize,
    /// How long a call to a rail may take in all before it is abandoned
    /// (its outcome then unknown), in milliseconds.
    #[arg(long, env = "ROWCOL_RAIL_TIMEOUT_MS", default_value_t = 30_000)]
    pub rail_timeout_ms: u64,
    /// Run the background job worker in this process.
    #[arg(long, env = "ROWCOL_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    pub worker: bool,
    /// Directory for the generated key in sandbox mode.
    #[arg(long, env = "ROWCOL_DATA_DIR", default_value = "data")]
    pub data_dir: String,
    /// Sandbox mode serves unauthenticated clock and fault controls and demo
    /// users with a printed password, so it refuses to listen on anything but
    /// a loopback address unless this is true.
    #[arg(long, env = "ROWCOL_ALLOW_PUBLIC_SANDBOX", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_public_sandbox: bool,
    /// Comma-separated IP addresses of reverse proxies whose
    /// `X-Forwarded-For` is believed for the client address (sign-in
    /// throttling). Unset: the peer address is the client.
    #[arg(long, env = "ROWCOL_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The origin browsers reach RowCol at (`https://rowcol.example.com`).
    /// Unset: the request's Host header with http (sandbox) or https (live).
    /// State-changing requests from any other origin are refused.
    #[arg(long, env = "ROWCOL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Sandbox: use another instance's simulators (`http://host:port/sandbox`)
    /// instead of hosting them here. For several instances on one database:
    /// this one neither seeds nor resets demo data and follows the other's
    /// clock. Needs the same ROWCOL_ENCRYPTION_KEY, ROWCOL_RAMP_WEBHOOK_SECRET
    /// and ROWCOL_PLAID_SECRET as the instance it points at.
    #[arg(long, env = "ROWCOL_SANDBOX_RAILS_URL")]
    pub sandbox_rails_url: Option<String>,
    /// The mail server for notifications, invitations and reset links:
    /// `smtps://user:password@host` (TLS), `smtp://user:password@host?tls=required`
    /// (STARTTLS) or `smtp://host:port` (plain, a local relay). Unset: no
    /// email; links are shown on screen only.
    #[arg(long, env = "ROWCOL_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of RowCol's email.
    #[arg(
        long,
        env = "ROWCOL_MAIL_FROM",
        default_value = "RowCol <rowcol@localhost>"
    )]
    pub mail_from: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |o: &Option<String>| if o.is_some() { "[redacted]" } else { "unset" };
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("database_url", &redact_url(&self.database_url))
            .field("rails", &self.rails)
            .field("demo_password", &redact(&self.demo_password))
            .field("encryption_key", &redact(&self.encryption_key))
            .field("ramp_webhook_secret", &redact(&self.ramp_webhook_secret))
            .field("qbo_webhook_verifier", &redact(&self.qbo_webhook_verifier))
            .field("plaid_secret", &redact(&self.plaid_secret))
            .field("metrics_token", &redact(&self.metrics_token))
            .field(
                "stripe_webhook_secret",
                &redact(&self.stripe_webhook_secret),
            )
            .field("qbo_client_id", &self.qbo_client_id)
            .field("qbo_client_secret", &redact(&self.qbo_client_secret))
            .field("ramp_client_id", &self.ramp_client_id)
            .field("ramp_client_secret", &redact(&self.ramp_client_secret))
            .field("stripe_client_id", &self.stripe_client_id)
            .field("stripe_secret_key", &redact(&self.stripe_secret_key))
            .field(
                "previous_encryption_keys",
                &self.previous_encryption_keys.len(),
            )
            .field("audit_signing_key", &redact(&self.audit_signing_key))
            .field("sandbox_start", &self.sandbox_start)
            .field("sandbox_seed", &self.sandbox_seed)
            .field("sandbox_clients", &self.sandbox_clients)
            .field("sandbox_living", &self.sandbox_living)
            .field("sandbox_unconnected", &self.sandbox_unconnected)
            .field("rail_timeout_ms", &self.rail_timeout_ms)
            .field("worker", &self.worker)
            .field("allow_public_sandbox", &self.allow_public_sandbox)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("public_url", &self.public_url)
            .field("sandbox_rails_url", &self.sandbox_rails_url)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("mail_from", &self.mail_from)
            .finish_non_exhaustive()
    }
}

/// Hide a password inside a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:[redacted]{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// Defaults for tests and embedding: everything as with no flags at all.
    pub fn defaults() -> Self {
        Cli::parse_from(["rowcol"]).config
    }

    pub fn validate(&self) -> Result<(), String> {
        let most = sandbox::world::CLIENT_NAMES.len();
        if !(2..=most).contains(&self.sandbox_clients) {
            return Err(format!(
                "ROWCOL_SANDBOX_CLIENTS must be between 2 and {most}"
            ));
        }
        if self.rail_timeout_ms == 0 {
            return Err("ROWCOL_RAIL_TIMEOUT_MS must be above 0".into());
        }
        // A guessable token would open the operator's view to anyone.
        if self
            .metrics_token
            .as_deref()
            .is_some_and(|t| t.trim().len() < 16)
        {
            return Err("ROWCOL_METRICS_TOKEN must be at least 16 characters".into());
        }
        if let Some(url) = &self.smtp_url {
            crate::notify::mailer::Mailer::new(url, &self.mail_from)
                .map_err(|e| format!("ROWCOL_SMTP_URL or ROWCOL_MAIL_FROM: {e}"))?;
        }
        if self.rails == RailsMode::Live {
            if self.encryption_key.is_none() {
                return Err("ROWCOL_ENCRYPTION_KEY is required with ROWCOL_RAILS=live".into());
            }
            if self.ramp_webhook_secret.is_none() {
                return Err("ROWCOL_RAMP_WEBHOOK_SECRET is required with ROWCOL_RAILS=live".into());
            }
            if self.qbo_webhook_verifier.is_none() {
                return Err(
                    "ROWCOL_QBO_WEBHOOK_VERIFIER is required with ROWCOL_RAILS=live".into(),
                );
            }
            if self.sandbox_rails_url.is_some() {
                return Err("ROWCOL_SANDBOX_RAILS_URL applies to ROWCOL_RAILS=sandbox only".into());
            }
        }
        if let Some(url) = &self.sandbox_rails_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(
                    "ROWCOL_SANDBOX_RAILS_URL must be an http(s) URL ending in /sandbox".into(),
                );
            }
            // The simulators' tokens are sealed with the key, their webhooks
            // signed and their Plaid calls authenticated with the secrets, of
            // the instance that hosts them: a generated one would not match.
            for (set, name) in [
                (self.encryption_key.is_some(), "ROWCOL_ENCRYPTION_KEY"),
                (
                    self.ramp_webhook_secret.is_some(),
                    "ROWCOL_RAMP_WEBHOOK_SECRET",
                ),
                (self.plaid_secret.is_some(), "ROWCOL_PLAID_SECRET"),
                (
                    self.qbo_webhook_verifier.is_some(),
                    "ROWCOL_QBO_WEBHOOK_VERIFIER",
                ),
            ] {
                if !set {
                    return Err(format!(
                        "{name} is required with ROWCOL_SANDBOX_RAILS_URL (the same as the instance hosting the simulators)"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let mut c = Config::defaults();
        c.demo_password = Some("hunter2".into());
        c.database_url = "postgres://rowcol:s3cret@db/rowcol".into();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("s3cret"));
        assert!(shown.contains("postgres://rowcol:[redacted]@db/rowcol"));
    }

    #[test]
    fn live_mode_requires_keys() {
        let mut c = Config::defaults();
        assert!(c.validate().is_ok());
        c.rails = RailsMode::Live;
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_sandbox_follower_needs_the_shared_secrets() {
        let mut c = Config::defaults();
        c.sandbox_rails_url = Some("http://127.0.0.1:3000/sandbox".into());
        assert!(c.validate().is_err());
        c.encryption_key = Some("k".into());
        c.ramp_webhook_secret = Some("w".into());
        c.qbo_webhook_verifier = Some("q".into());
        c.plaid_secret = Some("p".into());
        assert!(c.validate().is_ok());
        c.rails = RailsMode::Live;
        assert!(c.validate().is_err());
    }
}
