//! Who a request is: the secret key (`Authorization: Bearer …` or Basic with
//! the key as user name) and the account it acts on.

use super::error::StripeError;
use crate::oauth::token::{basic_auth, same};
use crate::sim_state::SimState;
use crate::wire::bearer_token;
use crate::SimRail;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

/// The key of a request: `Bearer <key>` or Basic with the key as user name.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    bearer_token(headers)
        .map(str::to_owned)
        .or_else(|| basic_auth(headers).map(|(user, _)| user))
        .filter(|k| !k.is_empty())
}

/// A key as Stripe shows it in errors: its prefix and last four.
pub(crate) fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let prefix_len = key
        .match_indices('_')
        .nth(1)
        .map(|(i, _)| key[..=i].chars().count())
        .unwrap_or(0);
    if chars.len() <= prefix_len + 4 {
        return "*".repeat(chars.len());
    }
    let prefix: String = chars[..prefix_len].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}{}{tail}", "*".repeat(chars.len() - prefix_len - 4))
}

pub(crate) fn unauthorized_error(key: Option<&str>) -> StripeError {
    let msg = match key {
        Some(k) => format!("Invalid API Key provided: {}", mask(k)),
        None => "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.".into(),
    };
    // `invalid_request_error`, as Stripe answers a bad key: the API's
    // `error.type` enum has no `authentication_error` (the libraries
    // dropped it, stripe-node's CHANGELOG; they classify a 401 by status).
    StripeError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", &msg)
}

pub(crate) fn unauthorized(key: Option<&str>) -> Response {
    unauthorized_error(key).response()
}

/// The account a request acts on: the account of a restricted key
/// (`rk_test_…`) or of a live OAuth access token, or, with the platform's
/// secret key (the Stripe app's `sk_test_…`), the connected account named by
/// `Stripe-Account` (it must have a live grant of the app). A key that
/// belongs to one account cannot act on another.
pub(crate) fn account_of(
    st: &SimState,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<String, StripeError> {
    let Some(key) = api_key(headers) else {
        return Err(unauthorized_error(None));
    };
    let header = headers
        .get("stripe-account")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let own = st
        .oauth
        .stripe_accounts
        .iter()
        .find(|a| same(&a.restricted_key, &key))
        .map(|a| a.id.clone())
        .or_else(|| {
            st.oauth
                .by_access(SimRail::Stripe, &key, now)
                .map(|g| g.account.clone())
        });
    if let Some(acct) = own {
        return match header {
            Some(h) if h != acct => Err(no_access(&key, h)),
            _ => Ok(acct),
        };
    }
    let platform = st
        .oauth
        .apps
        .as_ref()
        .is_some_and(|a| same(&a.stripe.secret, &key));
    if !platform {
        return Err(unauthorized_error(Some(&key)));
    }
    let Some(h) = header else {
        // The platform's own account holds nothing in this sandbox.
        return Err(StripeError::invalid(
            "This sandbox has no data on the platform account itself: pass `Stripe-Account: acct_…` to act on a connected account.",
            None,
        ));
    };
    let connected = st
        .oauth
        .grants
        .iter()
        .any(|g| g.rail == SimRail::Stripe && g.account == h && !g.revoked);
    if connected {
        Ok(h.to_owned())
    } else {
        Err(no_access(&key, h))
    }
}

fn no_access(key: &str, acct: &str) -> StripeError {
    let mut e = StripeError::new(
        StatusCode::FORBIDDEN,
        "invalid_request_error",
        &format!(
            "The provided key '{}' does not have access to account '{acct}' (or that account does not exist). Application access may have been revoked.",
            mask(key)
        ),
    );
    e.code = Some("account_invalid".into());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_to_prefix_and_last_four() {
        assert_eq!(mask("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(mask("rk_test_1234"), "************");
        assert_eq!(mask("nounderscorekey9876"), "***************9876");
    }
}
