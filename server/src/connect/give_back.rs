//! A grant RowCol obtained and then refused to keep is given back: revoked
//! at the provider (issue #18 §4). Without this, a refused connect (another
//! account than the client's, an account already another client's, one
//! that could not be read) left a live grant to a customer's books at the
//! provider that RowCol had forgotten and nobody could see.

use crate::connections::rail_name;
use crate::oauth::tokens::{self, Grant, OAuthError};
use crate::router_state::ServerState;
use app::model::Rail;

/// Why a grant is refused, as far as giving it back is concerned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Refusal {
    /// The account is already connected to another client of the firm.
    AccountTaken,
    /// Any other refusal after the grant was issued.
    Other,
}

/// Whether giving back a refused grant is safe: Stripe deauthorizes a
/// whole account (every grant of the app for it), so for an account the
/// firm already holds it would disconnect the client connected to it.
/// QBO and Ramp revoke the one grant the token belongs to, and Plaid
/// removes the one new Item.
pub(super) fn should_give_back(rail: Rail, refusal: Refusal) -> bool {
    !(rail == Rail::Stripe && refusal == Refusal::AccountTaken)
}

/// Revoke `grant` (for `account`) at `rail`'s provider. Best effort: the
/// person is refused either way; a failure is logged (never the token) and
/// the grant then lives until the provider expires it.
pub(super) async fn give_back(st: &ServerState, rail: Rail, grant: &Grant, account: &str) {
    let outcome = match rail {
        Rail::Plaid => st
            .services
            .onboarding
            .plaid
            .item_remove(&grant.access_token)
            .await
            .map_err(|e| e.to_string()),
        _ => match st.services.providers.as_ref().and_then(|p| p.get(rail)) {
            None => Err("no OAuth app is configured".to_owned()),
            Some(provider) => {
                let token = grant.refresh_token.as_ref().unwrap_or(&grant.access_token);
                match tokens::revoke(&st.services.oauth_http, provider, token, account).await {
                    // Already dead at the provider: nothing left to revoke.
                    Ok(()) | Err(OAuthError::InvalidGrant { .. }) => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    };
    match outcome {
        Ok(()) => tracing::info!(%rail, "a refused grant was revoked at the provider"),
        Err(error) => tracing::warn!(
            %rail,
            %error,
            "revoking a refused grant at {} failed; it lives until the provider expires it",
            rail_name(rail)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_keeps_an_account_the_firm_already_holds() {
        assert!(!should_give_back(Rail::Stripe, Refusal::AccountTaken));
        assert!(should_give_back(Rail::Stripe, Refusal::Other));
        for rail in [Rail::Qbo, Rail::Ramp, Rail::Plaid] {
            assert!(should_give_back(rail, Refusal::AccountTaken), "{rail}");
        }
    }
}
