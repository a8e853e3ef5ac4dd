//! The grant model on plain state: authorization requests waiting for the
//! person at the consent page, authorization codes, and grants with their
//! access tokens and rotating refresh tokens. No I/O; every function takes
//! the wall-clock `now`.

use super::{alnum, AppsRec, OAuthSettings, StripeAccountRec};
use crate::world::random_token;
use crate::SimRail;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Authorization requests (the pending sign-in) and codes live 10 minutes.
pub const REQUEST_TTL_SECS: i64 = 600;
pub const CODE_TTL_SECS: i64 = 600;
/// At most this many authorization requests wait at once (oldest dropped).
pub const MAX_PENDING: usize = 1000;
/// QBO: access 1 h, refresh 101 days (rolling).
pub const QBO_ACCESS_SECS: i64 = 3600;
pub const QBO_REFRESH_SECS: i64 = 8_726_400;
/// Ramp documents no refresh-token lifetime; 90 days here.
pub const RAMP_REFRESH_SECS: i64 = 90 * 86_400;
/// Stripe Apps OAuth: access about 1 h, refresh about 1 year.
pub const STRIPE_ACCESS_SECS: i64 = 3600;
pub const STRIPE_REFRESH_SECS: i64 = 365 * 86_400;

/// Everything OAuth in the simulator state (`#[serde(default)]`: a state
/// saved before it existed loads, and `ensure` fills it in).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuthState {
    pub apps: Option<AppsRec>,
    pub stripe_accounts: Vec<StripeAccountRec>,
    pub settings: OAuthSettings,
    pub grants: Vec<Grant>,
    pub pending: Vec<PendingAuth>,
    pub codes: Vec<AuthCode>,
}

#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantOwner {
    /// Issued to RowCol (seeded at world generation, or through the
    /// consent pages).
    Rowcol,
    /// Issued for outside programs by `/control/credentials`.
    External,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub rail: SimRail,
    /// Realm id, Ramp business id, or Stripe account id.
    pub account: String,
    pub owner: GrantOwner,
    /// The world's own grant for RowCol's seeder (one per rail and account).
    #[serde(default)]
    pub seeded: bool,
    pub scope: String,
    /// Every access token issued and not yet pruned; the last is the newest.
    pub access: Vec<AccessTok>,
    pub refresh: String,
    pub refresh_expires_at: DateTime<Utc>,
    /// Rotated-away refresh tokens still alive until `dies_at`.
    pub prev_refresh: Vec<PrevRefresh>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AccessTok {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct PrevRefresh {
    pub token: String,
    pub dies_at: DateTime<Utc>,
}

/// An authorization request between the authorize GET and the decision.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingAuth {
    pub id: String,
    pub rail: SimRail,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub signed_in: bool,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AuthCode {
    pub code: String,
    pub rail: SimRail,
    pub client_id: String,
    pub redirect_uri: String,
    pub account: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// The grant issued from it (set when exchanged; a second exchange
    /// revokes it).
    pub grant_id: Option<String>,
}

/// What a token endpoint hands out.
pub struct Issued {
    pub grant_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub scope: String,
    pub account: String,
}

/// An OAuth error (`error`, `error_description`), rendered per provider.
#[derive(Debug, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

fn oerr(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        error,
        description: description.into(),
    }
}

pub(crate) fn default_scope(rail: SimRail) -> &'static str {
    match rail {
        SimRail::Qbo => "com.intuit.quickbooks.accounting",
        SimRail::Ramp => "accounting:read accounting:write bills:read bills:write business:read entities:read transactions:read transfers:read vendors:read vendors:write",
        SimRail::Stripe => "stripe_apps",
        SimRail::Plaid => "",
    }
}

/// `BASE64URL(SHA256(verifier))` without padding (RFC 7636 S256).
pub(crate) fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A PKCE verifier or challenge: 43..=128 of `[A-Za-z0-9-._~]`.
pub(crate) fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn access_token(rail: SimRail) -> String {
    match rail {
        SimRail::Qbo => random_token("qbo_sbx_"),
        SimRail::Ramp => random_token("ramp_tok_"),
        _ => format!("sk_test_oauth_{}", alnum(48)),
    }
}

fn refresh_token(rail: SimRail) -> String {
    match rail {
        SimRail::Qbo => format!("RT1-{}", alnum(48)),
        SimRail::Ramp => random_token("ramp_tok_"),
        _ => format!("rt_{}", alnum(48)),
    }
}

fn code(rail: SimRail) -> String {
    match rail {
        SimRail::Qbo => format!("AB11{}", alnum(46)),
        SimRail::Ramp => random_token("ramp_code_"),
        _ => format!("ac_{}", alnum(32)),
    }
}

impl OAuthState {
    fn access_secs(&self, rail: SimRail) -> i64 {
        match rail {
            SimRail::Qbo => QBO_ACCESS_SECS,
            SimRail::Ramp => i64::from(self.settings.ramp_access_expires_in),
            _ => STRIPE_ACCESS_SECS,
        }
    }

    fn refresh_secs(rail: SimRail) -> i64 {
        match rail {
            SimRail::Qbo => QBO_REFRESH_SECS,
            SimRail::Ramp => RAMP_REFRESH_SECS,
            _ => STRIPE_REFRESH_SECS,
        }
    }

    pub fn stripe_account_of(&self, client: &str) -> Option<&StripeAccountRec> {
        self.stripe_accounts.iter().find(|a| a.client == client)
    }

    /// The world's seeded grant for `account`.
    pub fn seeded(&self, rail: SimRail, account: &str) -> Option<&Grant> {
        self.grants
            .iter()
            .find(|g| g.seeded && g.rail == rail && g.account == account)
    }

    /// The outside programs' grant for `account`, if issued.
    pub fn external(&self, rail: SimRail, account: &str) -> Option<&Grant> {
        self.grants.iter().find(|g| {
            g.owner == GrantOwner::External && !g.revoked && g.rail == rail && g.account == account
        })
    }

    /// A new grant with a fresh access token (or `first_access`) and refresh
    /// token; returns its id.
    pub fn issue(
        &mut self,
        rail: SimRail,
        account: &str,
        owner: GrantOwner,
        scope: &str,
        now: DateTime<Utc>,
        first_access: Option<String>,
    ) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let expires_at = now + Duration::seconds(self.access_secs(rail));
        self.grants.push(Grant {
            id: id.clone(),
            rail,
            account: account.to_owned(),
            owner,
            seeded: false,
            scope: scope.to_owned(),
            access: vec![AccessTok {
                token: first_access.unwrap_or_else(|| access_token(rail)),
                expires_at,
            }],
            refresh: refresh_token(rail),
            refresh_expires_at: now + Duration::seconds(Self::refresh_secs(rail)),
            prev_refresh: vec![],
            revoked: false,
            created_at: now,
        });
        id
    }

    /// The token set of a grant as a token endpoint answers it (the newest
    /// access token).
    pub fn issued(&self, grant_id: &str, now: DateTime<Utc>) -> Option<Issued> {
        let g = self.grants.iter().find(|g| g.id == grant_id)?;
        let a = g.access.last()?;
        Some(Issued {
            grant_id: g.id.clone(),
            access_token: a.token.clone(),
            refresh_token: g.refresh.clone(),
            expires_in: (a.expires_at - now).num_seconds().max(0),
            refresh_expires_in: (g.refresh_expires_at - now).num_seconds().max(0),
            scope: g.scope.clone(),
            account: g.account.clone(),
        })
    }

    /// The live grant an access token belongs to: not revoked, the token not
    /// expired.
    pub fn by_access(&self, rail: SimRail, token: &str, now: DateTime<Utc>) -> Option<&Grant> {
        if token.is_empty() {
            return None;
        }
        self.grants.iter().find(|g| {
            g.rail == rail
                && !g.revoked
                && g.access
                    .iter()
                    .any(|a| a.token == token && a.expires_at > now)
        })
    }

    /// Give a grant a fresh access token (refresh token unchanged).
    pub fn mint_access(&mut self, grant_id: &str, now: DateTime<Utc>) {
        let secs = self
            .grants
            .iter()
            .find(|g| g.id == grant_id)
            .map(|g| self.access_secs(g.rail));
        if let (Some(secs), Some(g)) = (secs, self.grants.iter_mut().find(|g| g.id == grant_id)) {
            g.access.retain(|a| a.expires_at > now);
            g.access.push(AccessTok {
                token: access_token(g.rail),
                expires_at: now + Duration::seconds(secs),
            });
        }
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        self.pending.retain(|p| p.expires_at > now);
        // Used and expired codes are kept a day, to recognise a replay.
        self.codes
            .retain(|c| c.expires_at + Duration::days(1) > now);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new_pending(
        &mut self,
        rail: SimRail,
        client_id: &str,
        redirect_uri: &str,
        state: Option<String>,
        scope: &str,
        code_challenge: Option<String>,
        now: DateTime<Utc>,
    ) -> String {
        self.prune(now);
        // The authorize page is open to anyone: keep the backlog bounded.
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        let id = random_token("req_");
        self.pending.push(PendingAuth {
            id: id.clone(),
            rail,
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            state,
            scope: scope.to_owned(),
            code_challenge,
            signed_in: false,
            expires_at: now + Duration::seconds(REQUEST_TTL_SECS),
        });
        id
    }

    pub fn pending_mut(
        &mut self,
        rail: SimRail,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<&mut PendingAuth> {
        self.pending
            .iter_mut()
            .find(|p| p.rail == rail && p.id == id && p.expires_at > now)
    }

    /// The person decided: the request is spent. Allowed: a code for
    /// `account`.
    pub fn decide(
        &mut self,
        request: &str,
        account: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let i = self.pending.iter().position(|p| p.id == request)?;
        let p = self.pending.remove(i);
        let account = account?;
        self.prune(now);
        let c = code(p.rail);
        self.codes.push(AuthCode {
            code: c.clone(),
            rail: p.rail,
            client_id: p.client_id,
            redirect_uri: p.redirect_uri,
            account: account.to_owned(),
            scope: p.scope,
            code_challenge: p.code_challenge,
            expires_at: now + Duration::seconds(CODE_TTL_SECS),
            grant_id: None,
        });
        Some(c)
    }

    /// The authorization code grant. `redirect_uri`: `None` when the
    /// provider does not take it (Stripe); else it must equal the one of the
    /// authorization request. A second use of a code is refused and revokes
    /// the grant the first use issued (RFC 6749 §4.1.2).
    pub fn exchange(
        &mut self,
        rail: SimRail,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let bad = || {
            oerr(
                "invalid_grant",
                "The authorization code is invalid, expired or already used",
            )
        };
        let Some(ci) = self
            .codes
            .iter()
            .position(|c| c.rail == rail && c.code == code && !code.is_empty())
        else {
            return Err(bad());
        };
        if let Some(gid) = self.codes[ci].grant_id.clone() {
            if let Some(g) = self.grants.iter_mut().find(|g| g.id == gid) {
                g.revoked = true;
            }
            return Err(oerr(
                "invalid_grant",
                "The authorization code has already been used",
            ));
        }
        let c = &self.codes[ci];
        if c.expires_at <= now || c.client_id != client_id {
            return Err(bad());
        }
        if let Some(r) = redirect_uri {
            if r != c.redirect_uri {
                return Err(oerr(
                    "invalid_grant",
                    "redirect_uri does not match the authorization request",
                ));
            }
        }
        match (&c.code_challenge, verifier) {
            (Some(ch), Some(v)) if pkce_shaped(v) && s256(v) == *ch => {}
            (Some(_), _) => {
                return Err(oerr(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge",
                ))
            }
            (None, Some(_)) => {
                return Err(oerr(
                    "invalid_grant",
                    "code_verifier given but no code_challenge was",
                ))
            }
            (None, None) => {}
        }
        let (account, scope) = (c.account.clone(), c.scope.clone());
        let id = self.issue(rail, &account, GrantOwner::Rowcol, &scope, now, None);
        self.codes[ci].grant_id = Some(id.clone());
        self.issued(&id, now).ok_or_else(bad)
    }

    /// The refresh token grant: always rotates. The presented token must be
    /// the grant's current one (unexpired) or a rotated-away one within its
    /// grace (`grace_secs` sets the grace of the one rotated away now).
    pub fn refresh(
        &mut self,
        rail: SimRail,
        token: &str,
        grace_secs: i64,
        now: DateTime<Utc>,
    ) -> Result<Issued, OAuthError> {
        let bad = || {
            oerr(
                "invalid_grant",
                "The refresh token is invalid, expired or revoked",
            )
        };
        if token.is_empty() {
            return Err(bad());
        }
        let access_secs = self.access_secs(rail);
        let Some(g) = self.grants.iter_mut().find(|g| {
            g.rail == rail
                && (g.refresh == token || g.prev_refresh.iter().any(|p| p.token == token))
        }) else {
            return Err(bad());
        };
        let live = if g.refresh == token {
            g.refresh_expires_at > now
        } else {
            g.prev_refresh
                .iter()
                .any(|p| p.token == token && p.dies_at > now)
        };
        if g.revoked || !live {
            return Err(bad());
        }
        g.prev_refresh.retain(|p| p.dies_at > now);
        if grace_secs > 0 {
            g.prev_refresh.push(PrevRefresh {
                token: std::mem::take(&mut g.refresh),
                dies_at: now + Duration::seconds(grace_secs),
            });
        }
        g.refresh = refresh_token(rail);
        g.refresh_expires_at = now + Duration::seconds(Self::refresh_secs(rail));
        g.access.retain(|a| a.expires_at > now);
        g.access.push(AccessTok {
            token: access_token(rail),
            expires_at: now + Duration::seconds(access_secs),
        });
        let id = g.id.clone();
        self.issued(&id, now).ok_or_else(bad)
    }

    /// Revoke the grant an access or refresh token belongs to (the whole
    /// grant). Whether one was found.
    pub fn revoke_token(&mut self, rail: SimRail, token: &str) -> bool {
        if token.is_empty() {
            return false;
        }
        let mut found = false;
        for g in self.grants.iter_mut().filter(|g| g.rail == rail) {
            if g.refresh == token
                || g.prev_refresh.iter().any(|p| p.token == token)
                || g.access.iter().any(|a| a.token == token)
            {
                g.revoked = true;
                found = true;
            }
        }
        found
    }

    /// How many grants for `account` are live (not revoked).
    pub fn live_for(&self, rail: SimRail, account: &str) -> usize {
        self.grants
            .iter()
            .filter(|g| g.rail == rail && g.account == account && !g.revoked)
            .count()
    }

    /// Every grant for `account` dies. How many were live.
    pub fn revoke_account(&mut self, rail: SimRail, account: &str) -> usize {
        let mut n = 0;
        for g in self
            .grants
            .iter_mut()
            .filter(|g| g.rail == rail && g.account == account && !g.revoked)
        {
            g.revoked = true;
            n += 1;
        }
        n
    }

    /// Every access token for `account` expires now.
    pub fn expire_account(&mut self, rail: SimRail, account: &str, now: DateTime<Utc>) {
        for g in self
            .grants
            .iter_mut()
            .filter(|g| g.rail == rail && g.account == account)
        {
            for a in &mut g.access {
                a.expires_at = a.expires_at.min(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> (OAuthState, DateTime<Utc>) {
        (OAuthState::default(), Utc::now())
    }

    fn code_for(o: &mut OAuthState, challenge: Option<String>, now: DateTime<Utc>) -> String {
        let req = o.new_pending(
            SimRail::Qbo,
            "cid",
            "https://x/cb",
            None,
            "s",
            challenge,
            now,
        );
        o.decide(&req, Some("realm"), now).expect("code")
    }

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_code_is_single_use_and_a_replay_revokes_its_grant() {
        let (mut o, now) = world();
        let c = code_for(&mut o, None, now);
        let t = o
            .exchange(SimRail::Qbo, "cid", &c, Some("https://x/cb"), None, now)
            .expect("first use");
        assert!(o.by_access(SimRail::Qbo, &t.access_token, now).is_some());
        let again = o.exchange(SimRail::Qbo, "cid", &c, Some("https://x/cb"), None, now);
        assert_eq!(again.err().map(|e| e.error), Some("invalid_grant"));
        assert!(o.by_access(SimRail::Qbo, &t.access_token, now).is_none());
    }

    #[test]
    fn an_expired_code_or_another_client_is_refused() {
        let (mut o, now) = world();
        let c = code_for(&mut o, None, now);
        let late = now + Duration::seconds(CODE_TTL_SECS + 1);
        assert!(o
            .exchange(SimRail::Qbo, "cid", &c, Some("https://x/cb"), None, late)
            .is_err());
        assert!(o
            .exchange(SimRail::Qbo, "other", &c, Some("https://x/cb"), None, now)
            .is_err());
        assert!(o
            .exchange(SimRail::Ramp, "cid", &c, Some("https://x/cb"), None, now)
            .is_err());
        assert!(o
            .exchange(SimRail::Qbo, "cid", &c, Some("https://x/cb"), None, now)
            .is_ok());
    }

    #[test]
    fn pkce_needs_the_right_verifier() {
        let (mut o, now) = world();
        let v = "a".repeat(50);
        let c = code_for(&mut o, Some(s256(&v)), now);
        let wrong = "b".repeat(50);
        assert!(o
            .exchange(
                SimRail::Qbo,
                "cid",
                &c,
                Some("https://x/cb"),
                Some(&wrong),
                now
            )
            .is_err());
        assert!(o
            .exchange(SimRail::Qbo, "cid", &c, Some("https://x/cb"), None, now)
            .is_err());
        assert!(o
            .exchange(SimRail::Qbo, "cid", &c, Some("https://x/cb"), Some(&v), now)
            .is_ok());
    }

    #[test]
    fn refresh_rotates_and_the_grace_keeps_the_old_one_alive() {
        let (mut o, now) = world();
        let id = o.issue(SimRail::Qbo, "realm", GrantOwner::Rowcol, "s", now, None);
        let rt0 = o.issued(&id, now).expect("grant").refresh_token;
        let t1 = o.refresh(SimRail::Qbo, &rt0, 60, now).expect("refresh");
        assert_ne!(t1.refresh_token, rt0);
        // Within the grace the old one still refreshes.
        let t2 = o.refresh(SimRail::Qbo, &rt0, 0, now).expect("within grace");
        // Past it, it does not.
        let later = now + Duration::seconds(61);
        assert!(o.refresh(SimRail::Qbo, &rt0, 0, later).is_err());
        // Grace 0: the one rotated away dies at once.
        let t3 = o
            .refresh(SimRail::Qbo, &t2.refresh_token, 0, later)
            .expect("current");
        assert!(o
            .refresh(SimRail::Qbo, &t2.refresh_token, 0, later)
            .is_err());
        assert!(o.refresh(SimRail::Qbo, &t3.refresh_token, 0, later).is_ok());
        // Old access tokens stay valid until their own expiry.
        assert!(o.by_access(SimRail::Qbo, &t1.access_token, later).is_some());
    }
}
