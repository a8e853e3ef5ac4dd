//! What guards the sign-in: the throttle policy, who the client is (the
//! peer, or what a trusted proxy says it saw), and a bound on concurrent
//! password hashing (argon2id costs 19 MiB and tens of milliseconds a run,
//! so unbounded concurrent attempts are a memory and CPU attack).

use super::app_state::AppState;
use super::store::audit::{self, Entry};
use super::store::login_throttle::{self, Admission, Policy};
use super::store::{commit, inbox, users};
use crate::error::AppError;
use crate::model::FirmId;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Failures allowed per account and per client address within the window.
pub const MAX_FAILURES: i64 = 10;
/// The sliding window the failures are counted in.
pub const WINDOW_SECS: i64 = 15 * 60;
/// How long a sign-in waits for a hashing slot before answering "busy".
pub const HASHING_WAIT_SECS: u64 = 10;

/// Injected in the app state (one per application, never global).
#[derive(Debug, Clone)]
pub struct SignInGuard {
    /// One permit per concurrent argon2 verification.
    pub hashing: Arc<Semaphore>,
    pub hashing_limit: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[IpAddr]>,
}

impl SignInGuard {
    /// As many concurrent hashes as the machine has cores: more would only
    /// queue inside the CPU while holding their memory.
    pub fn new(trusted_proxies: Vec<IpAddr>) -> Self {
        let limit = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        SignInGuard {
            hashing: Arc::new(Semaphore::new(limit)),
            hashing_limit: limit,
            trusted_proxies: trusted_proxies.into(),
        }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy;
    /// then the right-most `X-Forwarded-For` entry that is not itself a
    /// trusted proxy (entries to its left were written by the client and
    /// prove nothing).
    pub fn client_addr(&self, peer: SocketAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: &IpAddr| self.trusted_proxies.contains(&canonical(*ip));
        let peer = canonical(peer.ip());
        if !trusted(&peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for entry in header.rsplit(',') {
            let Some(ip) = parse_forwarded(entry) else {
                // Garbage from here leftwards: stop at what we know.
                break;
            };
            client = ip;
            if !trusted(&ip) {
                break;
            }
        }
        client
    }
}

/// The throttle: [`MAX_FAILURES`] within [`WINDOW_SECS`].
pub const POLICY: Policy = Policy {
    max_failures: MAX_FAILURES,
    window: chrono::Duration::seconds(WINDOW_SECS),
};

/// An argon2id hash of a random string, verified against when the email is
/// unknown, so timing does not reveal which emails exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2h2x0bYtjYbHFYJcpA+9VzHA1ubyHzMTJ+M02lxbfbE";

/// The calling client's address, from the request being served.
async fn request_client_addr(guard: &SignInGuard) -> Result<IpAddr, AppError> {
    use axum::extract::ConnectInfo;
    let ConnectInfo(peer) = leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "peer address missing (serve with connect info)");
            AppError::Internal
        })?;
    let forwarded = leptos::prelude::use_context::<axum::http::request::Parts>().and_then(|p| {
        // Several header lines are one list, in order.
        let lines: Vec<&str> = p
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!lines.is_empty()).then(|| lines.join(","))
    });
    Ok(guard.client_addr(peer, forwarded.as_deref()))
}

/// An email as typed, fit for a log line: anyone can type anything into the
/// sign-in form, so it is cut to 80 characters and logged with `?` (quoted,
/// newlines and control characters escaped), so it can neither forge a
/// line nor write a megabyte.
fn loggable(email: &str) -> String {
    let mut shown: String = email.chars().take(80).collect();
    if shown.len() < email.len() {
        shown.push('…');
    }
    shown
}

/// Check an email and password under the throttle: refused with
/// `Throttled` while the account or the client address has had too many
/// failures (before any hashing, and whatever the password), else verified
/// inside a hashing slot; a failure is recorded, and the one that closes
/// the door is audited. Returns the user id.
pub async fn verify(
    st: &AppState,
    email: &str,
    password: String,
    code: String,
) -> Result<String, AppError> {
    let guard = &st.sign_in;
    let client = request_client_addr(guard).await?.to_string();
    let now = st.clock.now();
    // The attempt takes its place in the count before it hashes anything.
    let admission = {
        let mut tx = st.db.begin().await?;
        let a = login_throttle::admit(&mut tx, POLICY, email, &client, now).await?;
        commit(tx).await?;
        a
    };
    let attempt = match admission {
        Admission::Admitted(id) => id,
        Admission::Throttled(until) => {
            let secs = (until - now).num_seconds().max(1);
            tracing::warn!(email = ?loggable(email), client = %client, secs, "sign-in throttled");
            return Err(AppError::Throttled {
                retry_after_secs: secs.unsigned_abs(),
            });
        }
    };
    let row = {
        let mut conn = st.db.acquire().await?;
        users::credentials(&mut conn, email).await?
    };
    let (uid, phc) = match row {
        Some((uid, phc)) => (Some(uid), phc),
        None => (None, DUMMY_HASH.to_owned()),
    };
    // Wait for a hashing slot, but not forever: past that the server is
    // saturated and the client should come back.
    let permit = match tokio::time::timeout(
        std::time::Duration::from_secs(HASHING_WAIT_SECS),
        guard.hashing.clone().acquire_owned(),
    )
    .await
    {
        Ok(p) => p.map_err(|e| AppError::internal("the hashing slots are closed", e))?,
        Err(_) => {
            // Turned away busy, no password checked: not a failure.
            let mut conn = st.db.acquire().await?;
            login_throttle::forget(&mut conn, &attempt).await?;
            return Err(AppError::Throttled {
                retry_after_secs: 1,
            });
        }
    };
    let ok = tokio::task::spawn_blocking(move || {
        let _slot = permit;
        super::crypto::verify_password(&password, &phc)
    })
    .await
    .unwrap_or(false);
    match (uid, ok) {
        (Some(uid), true) => match second_factor(st, &uid, email, &code).await? {
            Factor::NotUsed | Factor::Right => {
                let mut conn = st.db.acquire().await?;
                login_throttle::forget(&mut conn, &attempt).await?;
                drop(conn);
                audit_session(st, &uid, "auth.signed_in", &client).await?;
                Ok(uid)
            }
            // The password alone is not a failure: the person is asked
            // for the code (and nothing is counted against them).
            Factor::Missing => {
                let mut conn = st.db.acquire().await?;
                login_throttle::forget(&mut conn, &attempt).await?;
                Err(AppError::SecondFactor(
                    "Enter the 6-digit code from your authenticator app (or a recovery code)."
                        .into(),
                ))
            }
            // A wrong or replayed code counts as a failed sign-in.
            Factor::Wrong => {
                tracing::info!(email = ?loggable(email), client = %client, "second factor refused");
                st.metrics.sign_in_failed();
                record_failure(st, email, &client, Some(&uid)).await?;
                Err(AppError::SecondFactor(
                    "That code is not right, or was used already. Wait for the next one.".into(),
                ))
            }
        },
        (uid, _) => {
            tracing::info!(email = ?loggable(email), client = %client, "sign-in refused");
            st.metrics.sign_in_failed();
            record_failure(st, email, &client, uid.as_deref()).await?;
            Err(AppError::BadCredentials)
        }
    }
}

/// How the second factor went.
enum Factor {
    /// The person does not use one.
    NotUsed,
    Missing,
    Wrong,
    Right,
}

/// Check the person's second factor: a TOTP code (each time step accepted
/// once) or a recovery code (each once).
async fn second_factor(
    st: &AppState,
    uid: &str,
    email: &str,
    code: &str,
) -> Result<Factor, AppError> {
    let mut conn = st.db.acquire().await?;
    let row = users::totp(&mut conn, uid).await?;
    let (Some(sealed), Some(_)) = (row.totp_secret, row.totp_enabled_at) else {
        return Ok(Factor::NotUsed);
    };
    let code = code.trim();
    if code.is_empty() {
        return Ok(Factor::Missing);
    }
    if code.contains('-') {
        let ok = users::use_recovery_code(
            &mut conn,
            uid,
            &super::totp::recovery_hash(code),
            st.clock.now(),
        )
        .await?;
        return Ok(if ok { Factor::Right } else { Factor::Wrong });
    }
    let totp = super::totp::open(&st.sealer, &sealed, uid, email)?;
    let Some(step) = super::totp::check(&totp, code, super::totp::now_secs()) else {
        return Ok(Factor::Wrong);
    };
    let step = i64::try_from(step).map_err(|e| AppError::internal("a TOTP step", e))?;
    Ok(if users::accept_totp_step(&mut conn, uid, step).await? {
        Factor::Right
    } else {
        Factor::Wrong
    })
}

/// Count the failure; when it is the one that reaches the limit, say so in
/// the account's firm's audit log (or, for an address trying emails that
/// match no user, in the security log).
async fn record_failure(
    st: &AppState,
    email: &str,
    client: &str,
    uid: Option<&str>,
) -> Result<(), AppError> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    // The failure was counted when the attempt was let in.
    let counts = login_throttle::counts(&mut tx, POLICY, email, client, now).await?;
    let firm = match uid {
        Some(uid) => users::session_user(&mut tx, uid)
            .await?
            .and_then(|u| FirmId::parse(&u.firm_id).ok()),
        None => None,
    };
    // A failed sign-in to an account is the account's firm's business (an
    // email that matches no user belongs to no firm: the throttle's security
    // event below covers those). Never the password.
    if let Some(firm) = &firm {
        audit::record(
            &mut tx,
            firm,
            now,
            Entry {
                actor: email,
                action: "auth.sign_in_failed",
                subject: email,
                detail: serde_json::json!({
                    "client_addr": client,
                    "account_failures": counts.account,
                }),
            },
        )
        .await?;
    }
    let account_closed = counts.account == MAX_FAILURES;
    let address_closed = counts.client_addr == MAX_FAILURES;
    if account_closed || address_closed {
        let detail = serde_json::json!({
            "account": email,
            "client_addr": client,
            "account_failures": counts.account,
            "client_addr_failures": counts.client_addr,
            "throttled": match (account_closed, address_closed) {
                (true, true) => "account and client address",
                (true, false) => "account",
                _ => "client address",
            },
            "window_secs": WINDOW_SECS,
        });
        tracing::warn!(%detail, "sign-in throttle engaged");
        match &firm {
            Some(firm) => {
                audit::record(
                    &mut tx,
                    firm,
                    now,
                    Entry {
                        actor: "rowcol",
                        action: "auth.throttled",
                        subject: email,
                        detail,
                    },
                )
                .await?;
            }
            None => {
                inbox::security_event_from(
                    &mut tx,
                    "auth.throttled",
                    "sign-in",
                    &detail.to_string(),
                    now,
                )
                .await?;
            }
        }
    }
    commit(tx).await?;
    Ok(())
}

/// A sign-in or sign-out in the user's firm's audit log: who, and from
/// which address (never a password).
async fn audit_session(
    st: &AppState,
    uid: &str,
    action: &'static str,
    client: &str,
) -> Result<(), AppError> {
    let mut tx = st.db.begin().await?;
    let Some(user) = users::session_user(&mut tx, uid).await? else {
        return Ok(());
    };
    let firm = FirmId::parse(&user.firm_id)
        .map_err(|e| AppError::internal("a stored id does not parse", e))?;
    audit::record(
        &mut tx,
        &firm,
        st.clock.now(),
        Entry {
            actor: &user.email,
            action,
            subject: &user.email,
            detail: serde_json::json!({ "client_addr": client }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

/// The signed-in user `uid` is signing out: audited before the session ends.
pub async fn signed_out(st: &AppState, uid: &str) -> Result<(), AppError> {
    let client = request_client_addr(&st.sign_in).await?.to_string();
    audit_session(st, uid, "auth.signed_out", &client).await
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:5`,
/// `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    e.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(trusted: &[&str]) -> SignInGuard {
        SignInGuard::new(trusted.iter().map(|t| t.parse().unwrap()).collect())
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 4000)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let g = guard(&[]);
        assert_eq!(
            g.client_addr(peer("203.0.113.9"), Some("10.0.0.1")),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn a_trusted_proxy_is_believed_for_the_last_hop_only() {
        let g = guard(&["10.0.0.2", "10.0.0.3"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // The client forged the first entry; our proxies appended the rest.
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("1.1.1.1, 198.51.100.7, 10.0.0.3")),
            ip("198.51.100.7")
        );
        assert_eq!(g.client_addr(peer("10.0.0.2"), None), ip("10.0.0.2"));
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("198.51.100.7:5123")),
            ip("198.51.100.7")
        );
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("junk, 198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(
            g.client_addr(peer("10.0.0.2"), Some("junk")),
            ip("10.0.0.2")
        );
        assert_eq!(
            g.client_addr(peer("::ffff:10.0.0.2"), Some("192.0.2.1")),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn hashing_is_bounded_by_the_cores() {
        let g = guard(&[]);
        assert!(g.hashing_limit >= 1);
        assert_eq!(g.hashing.available_permits(), g.hashing_limit);
    }
}
