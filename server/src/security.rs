//! Three things every request passes through (one tower layer, outermost):
//!
//! * **Only our own host names are served.** A request whose `Host` is not a
//!   loopback name nor `ROWCOL_PUBLIC_URL`'s host is answered 421 before
//!   anything else: a page on a domain that re-points itself at 127.0.0.1
//!   (DNS rebinding) would otherwise be same-origin with the sandbox's
//!   credentials and clock. Health checks answer any name (an orchestrator
//!   probes an instance by its address; they reveal nothing).
//! * **Cross-origin state changes are refused.** A `POST`/`PUT`/`PATCH`/
//!   `DELETE` whose `Origin` (or, lacking one, `Referer`) is not RowCol's own
//!   origin is answered 403 before any handler runs. Requests with neither
//!   header are let through: browsers always send `Origin` on a cross-site
//!   POST, so such a request is a script or a server (the session cookie is
//!   `SameSite=Lax`, so it carries no browser session cross-site anyway).
//!   `/webhooks/*` is exempt: those are signed by the rail, not same-origin.
//! * **Nothing but the static bundle is cached**: every other answer
//!   (pages, server functions, the sandbox's controls) carries
//!   `Cache-Control: no-store`, so a shared or back-button cache never
//!   keeps a client's figures or a page seen signed in.
//! * **Security headers on every response**: a Content-Security-Policy that
//!   lets only this response's own inline scripts run (a fresh nonce per
//!   request, handed to Leptos so its hydration scripts carry it) plus the
//!   bundle from this origin (`'wasm-unsafe-eval'` to compile the wasm),
//!   `frame-ancestors 'none'` and `X-Frame-Options: DENY` (no framing of the
//!   approval page), `nosniff`, and a strict referrer policy.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// The per-request CSP nonce, put in the request's extensions for the page
/// renderer (see [`provide_request_nonce`]).
#[derive(Clone, Debug)]
pub struct CspNonce(pub Arc<str>);

impl CspNonce {
    fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        CspNonce(hex::encode(bytes).into())
    }
}

/// An origin: scheme, host and port (the default port made explicit).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// From a URL (`https://host[:port][/path…]`); `None` for anything else,
    /// including the opaque origin `null`.
    fn parse(url: &str) -> Option<Origin> {
        let uri: Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?;
        Self::from_parts(&scheme, authority.host(), authority.port_u16())
    }

    fn from_parts(scheme: &str, host: &str, port: Option<u16>) -> Option<Origin> {
        let default = match scheme {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        Some(Origin {
            scheme: scheme.to_owned(),
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default),
        })
    }
}

/// What the layer needs to know, fixed at start.
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    /// `ROWCOL_PUBLIC_URL`'s origin, when configured.
    public: Option<Origin>,
    /// The scheme browsers use to reach us when no public URL is configured:
    /// https live (behind TLS), http for the local sandbox.
    scheme: &'static str,
    /// Origins a form of ours may lead to besides our own: the providers'
    /// consent pages and Plaid Link (the connect buttons post to us and we
    /// redirect there; browsers hold that redirect to `form-action`).
    form_actions: String,
}

impl SecurityPolicy {
    pub fn new(public_url: Option<&str>, https: bool) -> anyhow::Result<Self> {
        let public = match public_url {
            Some(u) => Some(Origin::parse(u).ok_or_else(|| {
                anyhow::anyhow!(
                    "ROWCOL_PUBLIC_URL must be an http(s) URL like https://rowcol.example.com"
                )
            })?),
            None => None,
        };
        Ok(SecurityPolicy {
            public,
            scheme: if https { "https" } else { "http" },
            form_actions: String::new(),
        })
    }

    /// Allow forms to lead (through our redirect) to these URLs' origins.
    pub fn with_form_actions<'a>(mut self, urls: impl IntoIterator<Item = &'a str>) -> Self {
        let mut seen: Vec<String> = Vec::new();
        for u in urls {
            if let Some(o) = Origin::parse(u) {
                let text = format!("{}://{}:{}", o.scheme, o.host, o.port);
                if !seen.contains(&text) {
                    seen.push(text);
                }
            }
        }
        self.form_actions = seen.iter().map(|o| format!(" {o}")).collect();
        self
    }

    fn own_origin(&self, headers: &HeaderMap) -> Option<Origin> {
        if let Some(o) = &self.public {
            return Some(o.clone());
        }
        let host = headers.get(header::HOST)?.to_str().ok()?;
        let authority: axum::http::uri::Authority = host.parse().ok()?;
        Origin::from_parts(self.scheme, authority.host(), authority.port_u16())
    }

    /// `Err(host)` when the request names a host this instance does not
    /// serve (see the module's documentation).
    fn check_host(&self, path: &str, uri: &Uri, headers: &HeaderMap) -> Result<(), String> {
        // Probes and the metrics scraper name the instance by its address;
        // none of them serves a page (metrics wants its own bearer token).
        if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return Ok(());
        }
        let named = match headers.get(header::HOST) {
            Some(h) => h.to_str().map_err(|_| "(not text)".to_owned())?.to_owned(),
            None => match uri.authority() {
                Some(a) => a.as_str().to_owned(),
                None => return Err("(none)".into()),
            },
        };
        let authority: axum::http::uri::Authority = named.parse().map_err(|_| named.clone())?;
        let host = authority.host().to_ascii_lowercase();
        let ours = is_loopback_name(&host) || self.public.as_ref().is_some_and(|p| p.host == host);
        if ours {
            Ok(())
        } else {
            Err(named)
        }
    }

    /// `Err(reason)` when a state-changing request comes from elsewhere.
    fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), String> {
        let changes_state = matches!(
            *method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if !changes_state || path.starts_with("/webhooks/") {
            return Ok(());
        }
        let claimed = match headers.get(header::ORIGIN) {
            Some(o) => o.to_str().unwrap_or("null").to_owned(),
            None => match headers.get(header::REFERER) {
                Some(r) => r.to_str().unwrap_or("null").to_owned(),
                None => return Ok(()),
            },
        };
        let own = self.own_origin(headers);
        match (Origin::parse(&claimed), own) {
            (Some(from), Some(own)) if from == own => Ok(()),
            _ => Err(claimed),
        }
    }
}

/// `localhost`, a name under `.localhost` (RFC 6761: always loopback), or
/// a loopback address (`127.0.0.0/8`, `[::1]`).
fn is_loopback_name(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What a misdirected request is told, and what the log says of it: the
/// name it asked for, escaped and cut short (it is the caller's text).
fn misdirected(host: &str) -> Response {
    let shown: String = host.chars().take(100).collect();
    tracing::warn!(host = ?shown, "refused a request for a host this instance does not serve");
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(serde_json::json!({
            "error": "this server does not serve that host name (set ROWCOL_PUBLIC_URL to the address people use)"
        })),
    )
        .into_response()
}

/// Why the layer answered instead of the handler.
enum Refusal {
    /// The host name asked for is not ours (421).
    Host(String),
    /// A state change from another origin (403).
    Origin(String),
}

/// The layer (`axum::middleware::from_fn_with_state`).
pub async fn guard(
    State(policy): State<Arc<SecurityPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let nonce = CspNonce::generate();
    let path = req.uri().path();
    let static_asset = is_static_asset(path);
    let verdict = match policy.check_host(path, req.uri(), req.headers()) {
        Err(named) => Err(Refusal::Host(named)),
        Ok(()) => policy
            .check(req.method(), path, req.headers())
            .map_err(Refusal::Origin),
    };
    let mut res = match verdict {
        Err(Refusal::Host(named)) => misdirected(&named),
        Ok(()) => {
            req.extensions_mut().insert(nonce.clone());
            next.run(req).await
        }
        Err(Refusal::Origin(from)) => {
            tracing::warn!(
                method = %req.method(),
                path = req.uri().path(),
                origin = %from,
                "refused a cross-origin state change"
            );
            (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({"error": "cross-origin request refused"})),
            )
                .into_response()
        }
    };
    set_headers(res.headers_mut(), &nonce, &policy.form_actions);
    if !static_asset {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The files every visitor gets alike: the wasm/js/css bundle and icons.
fn is_static_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || matches!(path, "/favicon.ico" | "/favicon.svg")
}

fn set_headers(h: &mut HeaderMap, nonce: &CspNonce, form_actions: &str) {
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'{form_actions}; frame-ancestors 'none'",
        nonce.0
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: under it a browser sends `Origin: null` with a
    // same-origin form POST (Fetch, "append a request Origin header"), and
    // the JavaScript-off console would be refused as cross-origin.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Hand this request's nonce to Leptos (called in the render context, after
/// leptos_axum provided its own random one), so the hydration scripts and
/// resource scripts carry the nonce the CSP header names.
pub fn provide_request_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(n)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(n));
    }
}

/// Equal bytes, compared without stopping at the first difference (a bearer
/// token or a signature must not leak its prefix through timing).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let p = SecurityPolicy::new(None, false).unwrap();
        let ok = |h: &[(&'static str, &str)]| p.check(&Method::POST, "/api/x", &headers(h));
        let host = ("host", "127.0.0.1:3000");
        assert!(ok(&[host, ("origin", "http://127.0.0.1:3000")]).is_ok());
        assert!(ok(&[("host", "Example.COM"), ("origin", "http://example.com:80")]).is_ok());
        assert!(ok(&[host, ("referer", "http://127.0.0.1:3000/clients/x?y=1")]).is_ok());
        assert!(ok(&[host]).is_ok(), "no Origin, no Referer: not a browser");
        assert!(ok(&[host, ("origin", "https://127.0.0.1:3000")]).is_err());
        assert!(ok(&[host, ("origin", "http://127.0.0.1:3001")]).is_err());
        assert!(ok(&[host, ("origin", "null")]).is_err());
        assert!(ok(&[host, ("origin", "http://evil.test")]).is_err());
        assert!(ok(&[host, ("referer", "http://evil.test/")]).is_err());
        assert!(
            ok(&[("origin", "http://127.0.0.1:3000")]).is_err(),
            "no Host"
        );
        // Reads and webhooks are not checked.
        assert!(p
            .check(
                &Method::GET,
                "/",
                &headers(&[host, ("origin", "http://evil.test")])
            )
            .is_ok());
        assert!(p
            .check(
                &Method::POST,
                "/webhooks/ramp",
                &headers(&[host, ("origin", "http://evil.test")])
            )
            .is_ok());
    }

    #[test]
    fn only_loopback_names_and_the_public_host_are_served() {
        let local = SecurityPolicy::new(None, false).unwrap();
        let public = SecurityPolicy::new(Some("https://rowcol.example.com"), true).unwrap();
        let uri: Uri = "/clients".parse().unwrap();
        let served = |p: &SecurityPolicy, host: &str| {
            p.check_host("/clients", &uri, &headers(&[("host", host)]))
                .is_ok()
        };
        for host in [
            "127.0.0.1:3000",
            "127.8.9.1",
            "localhost:3000",
            "LOCALHOST",
            "app.localhost:3000",
            "[::1]:3000",
        ] {
            assert!(served(&local, host), "{host}");
            assert!(served(&public, host), "{host}");
        }
        for host in [
            "rebind.evil.test:3000",
            "127.0.0.1.evil.test",
            "localhost.evil.test",
            "10.0.0.5:3000",
            "[::2]:3000",
            "0.0.0.0:3000",
        ] {
            assert!(!served(&local, host), "{host}");
            assert!(!served(&public, host), "{host}");
        }
        assert!(served(&public, "rowcol.example.com"));
        assert!(served(&public, "RowCol.Example.com:443"));
        assert!(!served(&local, "rowcol.example.com"));
        assert!(local
            .check_host("/clients", &uri, &HeaderMap::new())
            .is_err());
        assert!(local
            .check_host("/healthz", &uri, &headers(&[("host", "10.0.0.5")]))
            .is_ok());
        assert!(local
            .check_host("/metrics", &uri, &headers(&[("host", "10.0.0.5:3000")]))
            .is_ok());
    }

    #[test]
    fn a_public_url_is_the_only_own_origin() {
        let p = SecurityPolicy::new(Some("https://rowcol.example.com/"), true).unwrap();
        let check = |origin: &str| {
            p.check(
                &Method::POST,
                "/api/x",
                &headers(&[("host", "10.0.0.5:3000"), ("origin", origin)]),
            )
        };
        assert!(check("https://rowcol.example.com").is_ok());
        assert!(check("https://rowcol.example.com:443").is_ok());
        assert!(check("http://10.0.0.5:3000").is_err());
        assert!(SecurityPolicy::new(Some("rowcol.example.com"), true).is_err());
    }
}
