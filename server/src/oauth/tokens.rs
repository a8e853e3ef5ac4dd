//! Calls to a provider's token endpoint through the `oauth2` crate (code
//! exchange, refresh) and to its revocation endpoint, with outcomes
//! classified by meaning. Tokens only ever travel inside [`SecretString`].

use super::providers::OAuthProvider;
use crate::rails::SecretString;
use app::model::Rail;
use chrono::{DateTime, Duration, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RefreshToken, RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

/// Fields some providers add to the token response.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RailTokenExtra {
    /// QBO: the refresh token's remaining life, seconds.
    #[serde(default)]
    pub x_refresh_token_expires_in: Option<i64>,
    /// Stripe: the connected account.
    #[serde(default)]
    pub stripe_user_id: Option<String>,
}
impl ExtraTokenFields for RailTokenExtra {}

type RailTokenResponse = StandardTokenResponse<RailTokenExtra, BasicTokenType>;
type TokenClient = oauth2::Client<
    BasicErrorResponse,
    RailTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A token call failed.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The grant is dead (code used or expired, refresh token rotated away
    /// or revoked): only the person can fix it, by connecting again.
    #[error("{rail}: the provider refused the grant ({detail})")]
    InvalidGrant { rail: Rail, detail: String },
    /// RowCol's own app credentials or configuration were refused.
    #[error("{rail}: the provider refused RowCol's app credentials ({detail})")]
    InvalidClient { rail: Rail, detail: String },
    /// Try again later (5xx, 429, timeout, connection).
    #[error("{rail}: token endpoint unavailable ({detail})")]
    Transient { rail: Rail, detail: String },
    /// An answer RowCol cannot use.
    #[error("{rail}: unusable token response ({detail})")]
    Permanent { rail: Rail, detail: String },
    #[error("{0}")]
    Config(String),
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidGrant { .. } => "invalid_grant",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::Transient { .. } => "transient",
            OAuthError::Permanent { .. } => "permanent",
            OAuthError::Config(_) => "config",
        }
    }
}

/// What a token endpoint granted. Instants are wall-clock, as the provider
/// measures them.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Stripe names the account in the token response.
    pub account_id: Option<String>,
}

/// Where the person is sent, and the PKCE verifier to keep for the callback.
pub struct AuthorizeRedirect {
    pub url: String,
    pub pkce_verifier: Option<SecretString>,
}

fn client(p: &OAuthProvider, redirect_uri: Option<&str>) -> Result<TokenClient, OAuthError> {
    let bad =
        |what: &str, e: url::ParseError| OAuthError::Config(format!("{}: {what}: {e}", p.rail));
    let (id, secret) = match &p.token_client_id {
        Some(key) => (key.expose().to_owned(), String::new()),
        None => (p.client_id.clone(), p.client_secret.expose().to_owned()),
    };
    let mut c = oauth2::Client::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret))
        .set_auth_uri(AuthUrl::new(p.authorize_url.clone()).map_err(|e| bad("authorize URL", e))?)
        .set_token_uri(TokenUrl::new(p.token_url.clone()).map_err(|e| bad("token URL", e))?);
    if let Some(r) = redirect_uri {
        c = c.set_redirect_uri(RedirectUrl::new(r.to_owned()).map_err(|e| bad("redirect URI", e))?);
    }
    Ok(c)
}

/// The provider's authorize URL for this flow.
pub fn authorize_redirect(
    p: &OAuthProvider,
    redirect_uri: &str,
    state: &str,
) -> Result<AuthorizeRedirect, OAuthError> {
    // The authorize URL carries the app id (Stripe: `ca_…`), not the key.
    let mut shown = p.clone();
    shown.token_client_id = None;
    let c = client(&shown, Some(redirect_uri))?;
    let state = state.to_owned();
    let mut req = c
        .authorize_url(move || CsrfToken::new(state))
        .add_scopes(p.scopes.iter().cloned().map(Scope::new));
    let mut verifier = None;
    if p.pkce {
        let (challenge, v) = PkceCodeChallenge::new_random_sha256();
        req = req.set_pkce_challenge(challenge);
        verifier = Some(SecretString::new(v.secret().clone()));
    }
    let (url, _) = req.url();
    Ok(AuthorizeRedirect {
        url: url.to_string(),
        pkce_verifier: verifier,
    })
}

/// The error a transport or status problem becomes before oauth2 parses.
#[derive(Debug, thiserror::Error)]
enum Wire {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("transport: {0}")]
    Transport(String),
}

/// The HTTP client oauth2 calls: reqwest, turning 429 and 5xx into errors
/// of their own so they are never mistaken for an OAuth refusal.
struct Sender(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Sender {
    type Error = Wire;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, Wire>> + Send + Sync + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), request))
    }
}

async fn send(http: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, Wire> {
    let req: reqwest::Request = req
        .try_into()
        .map_err(|e: reqwest::Error| Wire::Transport(e.without_url().to_string()))?;
    let resp = http
        .execute(req)
        .await
        .map_err(|e| Wire::Transport(e.without_url().to_string()))?;
    let status = resp.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Wire::Status(status.as_u16()));
    }
    let mut b = oauth2::http::Response::builder().status(status.as_u16());
    for (k, v) in resp.headers() {
        b = b.header(k.as_str(), v.as_bytes());
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| Wire::Transport(e.without_url().to_string()))?;
    b.body(body.to_vec())
        .map_err(|e| Wire::Transport(e.to_string()))
}

fn classify(rail: Rail, e: RequestTokenError<Wire, BasicErrorResponse>) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let detail = r.error().to_string();
            match r.error() {
                BasicErrorResponseType::InvalidGrant => OAuthError::InvalidGrant { rail, detail },
                BasicErrorResponseType::InvalidClient
                | BasicErrorResponseType::UnauthorizedClient => {
                    OAuthError::InvalidClient { rail, detail }
                }
                _ => OAuthError::Permanent { rail, detail },
            }
        }
        RequestTokenError::Request(w) => OAuthError::Transient {
            rail,
            detail: w.to_string(),
        },
        RequestTokenError::Parse(e, _) => OAuthError::Permanent {
            rail,
            detail: format!("unparseable: {}", e.path()),
        },
        RequestTokenError::Other(s) => OAuthError::Permanent { rail, detail: s },
    }
}

fn grant(r: RailTokenResponse, now: DateTime<Utc>) -> Grant {
    let at = |secs: i64| now + Duration::seconds(secs);
    Grant {
        access_token: SecretString::new(r.access_token().secret().clone()),
        refresh_token: r
            .refresh_token()
            .map(|t| SecretString::new(t.secret().clone())),
        access_expires_at: r
            .expires_in()
            .map(|d| at(i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 1000))),
        refresh_expires_at: r.extra_fields().x_refresh_token_expires_in.map(at),
        account_id: r.extra_fields().stripe_user_id.clone(),
    }
}

/// Exchange an authorization code (with the PKCE verifier if one was sent).
pub async fn exchange_code(
    http: &reqwest::Client,
    p: &OAuthProvider,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: Option<&SecretString>,
) -> Result<Grant, OAuthError> {
    let c = client(p, Some(redirect_uri))?;
    let mut req = c.exchange_code(AuthorizationCode::new(code.to_owned()));
    if let Some(v) = pkce_verifier {
        req = req.set_pkce_verifier(PkceCodeVerifier::new(v.expose().to_owned()));
    }
    let sender = Sender(http.clone());
    let now = Utc::now();
    let r = req
        .request_async(&sender)
        .await
        .map_err(|e| classify(p.rail, e))?;
    Ok(grant(r, now))
}

/// Trade a refresh token for new tokens. The answer may carry a new refresh
/// token (QBO always does): the caller must store it with the access token.
pub async fn refresh(
    http: &reqwest::Client,
    p: &OAuthProvider,
    refresh_token: &SecretString,
) -> Result<Grant, OAuthError> {
    let c = client(p, None)?;
    let rt = RefreshToken::new(refresh_token.expose().to_owned());
    let sender = Sender(http.clone());
    let now = Utc::now();
    let r = c
        .exchange_refresh_token(&rt)
        .request_async(&sender)
        .await
        .map_err(|e| classify(p.rail, e))?;
    Ok(grant(r, now))
}

/// Revoke at the provider, in its own dialect. A token the provider no
/// longer knows is as good as revoked.
pub async fn revoke(
    http: &reqwest::Client,
    p: &OAuthProvider,
    token: &SecretString,
    account_id: &str,
) -> Result<(), OAuthError> {
    let req = match p.rail {
        // Intuit's SDK sends JSON `{"token": …}` with Basic auth.
        Rail::Qbo => http
            .post(&p.revoke_url)
            .basic_auth(&p.client_id, Some(p.client_secret.expose()))
            .header("accept", "application/json")
            .json(&serde_json::json!({ "token": token.expose() })),
        Rail::Ramp => http
            .post(&p.revoke_url)
            .basic_auth(&p.client_id, Some(p.client_secret.expose()))
            .form(&[
                ("token", token.expose()),
                ("token_type_hint", "refresh_token"),
            ]),
        // Stripe: deauthorize the account from the app, with the secret key.
        Rail::Stripe => {
            let key = p.token_client_id.as_ref().unwrap_or(&p.client_secret);
            http.post(&p.revoke_url)
                .basic_auth(key.expose(), Some(""))
                .form(&[
                    ("client_id", p.client_id.as_str()),
                    ("stripe_user_id", account_id),
                ])
        }
        Rail::Plaid => return Err(OAuthError::Config("Plaid has no OAuth revoke".into())),
    };
    let resp = req.send().await.map_err(|e| OAuthError::Transient {
        rail: p.rail,
        detail: e.without_url().to_string(),
    })?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(OAuthError::Transient {
            rail: p.rail,
            detail: format!("HTTP {status}"),
        }),
        // Already dead at the provider: nothing left to revoke.
        400 if body_says_invalid_grant(resp).await => Ok(()),
        401 => Err(OAuthError::InvalidClient {
            rail: p.rail,
            detail: format!("HTTP {status}"),
        }),
        _ => Err(OAuthError::Permanent {
            rail: p.rail,
            detail: format!("HTTP {status}"),
        }),
    }
}

async fn body_says_invalid_grant(resp: reqwest::Response) -> bool {
    resp.json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .is_some_and(|e| e == "invalid_grant" || e == "invalid_token")
}
