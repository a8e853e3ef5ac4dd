//! What a new connection is connected *to*: the QBO company's name, the Ramp
//! business, the Stripe account, and Plaid Link (link tokens, the public
//! token exchange, item removal). Used when a person connects a rail; the
//! roles in `mod.rs` cover the work afterwards.

use super::http::{error_for, RailHttp};
use super::plaid::PlaidClient;
use super::qbo::QboClient;
use super::ramp::RampClient;
use super::{RailAuth, RailError, SecretString};
use serde_json::{json, Value};

fn field(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        // QBO casing varies between documents and observed responses.
        cur = cur.get(*p).or_else(|| {
            cur.as_object().and_then(|o| {
                o.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(_, v)| v)
            })
        })?;
    }
    cur.as_str().map(str::to_owned)
}

impl QboClient {
    /// `CompanyInfo.CompanyName` of the connected realm.
    pub async fn company_name(&self, auth: &RailAuth) -> Result<String, RailError> {
        let realm = auth.external_id.clone();
        if !realm.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RailError::Permanent("qbo: bad realm id".into()));
        }
        let v = self.get(auth, &format!("companyinfo/{realm}"), &[]).await?;
        field(&v, &["CompanyInfo", "CompanyName"])
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| RailError::Permanent("qbo: CompanyInfo has no CompanyName".into()))
    }
}

impl RampClient {
    /// `GET /developer/v1/business`: the business this token acts for.
    pub async fn business(&self, auth: &RailAuth) -> Result<(String, String), RailError> {
        let v = self.get_json(auth, "business", &[]).await?;
        let id = field(&v, &["id"])
            .ok_or_else(|| RailError::Permanent("ramp: business without id".into()))?;
        let name = field(&v, &["business_name_on_card"])
            .or_else(|| field(&v, &["business_name_legal"]))
            .unwrap_or_else(|| id.clone());
        Ok((id, name))
    }
}

/// Stripe: just enough to name the connected account.
pub struct StripeClient {
    base_url: String,
    http: RailHttp,
}

impl StripeClient {
    pub fn new(base_url: String, http: RailHttp) -> Self {
        StripeClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// `GET /v1/account` with the connection's token (an OAuth access token
    /// or a restricted key): the account's id and display name.
    pub async fn account(&self, token: &SecretString) -> Result<(String, String), RailError> {
        let req = self
            .http
            .get(format!("{}/v1/account", self.base_url))
            .bearer_auth(token.expose());
        let resp = self.http.execute("stripe", "request-id", req).await?;
        if !resp.is_success() {
            let msg = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| field(&v, &["error", "type"]))
                .unwrap_or_default();
            return Err(error_for("stripe", &resp, &msg));
        }
        let v = resp.json("stripe")?;
        let id = field(&v, &["id"])
            .ok_or_else(|| RailError::Permanent("stripe: account without id".into()))?;
        let name = field(&v, &["settings", "dashboard", "display_name"])
            .or_else(|| field(&v, &["business_profile", "name"]))
            .unwrap_or_else(|| id.clone());
        Ok((id, name))
    }
}

/// A Plaid Link session RowCol started.
#[derive(Debug, Clone)]
pub struct LinkSession {
    pub link_token: SecretString,
    pub hosted_link_url: String,
}

/// What Link produced, read back with `/link/token/get`.
#[derive(Debug, Clone, Default)]
pub struct LinkResult {
    /// Set when a new item was added (not in update mode).
    pub public_token: Option<SecretString>,
    pub item_id: Option<String>,
    pub institution: Option<String>,
    pub account_mask: Option<String>,
    pub account_name: Option<String>,
    /// The person finished the flow (false: exited, or not finished yet).
    pub finished: bool,
}

impl PlaidClient {
    /// `/link/token/create` for Hosted Link. `access_token`: update mode for
    /// an item that needs its login again.
    pub async fn link_token_create(
        &self,
        client_user_id: &str,
        completion_redirect_uri: &str,
        webhook: Option<&str>,
        access_token: Option<&SecretString>,
    ) -> Result<LinkSession, RailError> {
        let mut body = json!({
            "client_name": "RowCol",
            "language": "en",
            "country_codes": ["US"],
            "user": { "client_user_id": client_user_id },
            "hosted_link": { "completion_redirect_uri": completion_redirect_uri },
        });
        match access_token {
            Some(t) => body["access_token"] = json!(t.expose()),
            None => body["products"] = json!(["transactions"]),
        }
        if let Some(w) = webhook {
            body["webhook"] = json!(w);
        }
        let v = self.call("/link/token/create", &body).await?;
        Ok(LinkSession {
            link_token: SecretString::new(
                field(&v, &["link_token"])
                    .ok_or_else(|| RailError::Permanent("plaid: no link_token".into()))?,
            ),
            hosted_link_url: field(&v, &["hosted_link_url"])
                .ok_or_else(|| RailError::Permanent("plaid: no hosted_link_url".into()))?,
        })
    }

    /// `/link/token/get`: the latest session's outcome.
    pub async fn link_token_get(&self, link_token: &SecretString) -> Result<LinkResult, RailError> {
        let v = self
            .call(
                "/link/token/get",
                &json!({ "link_token": link_token.expose() }),
            )
            .await?;
        let Some(session) = v
            .get("link_sessions")
            .and_then(Value::as_array)
            .and_then(|s| s.last())
        else {
            return Ok(LinkResult::default());
        };
        let finished = session.get("finished_at").is_some_and(|f| !f.is_null())
            && session.get("exit").is_none_or(Value::is_null);
        let added = session
            .pointer("/results/item_add_results")
            .and_then(Value::as_array)
            .and_then(|a| a.first());
        let mut r = LinkResult {
            finished,
            ..LinkResult::default()
        };
        if let Some(a) = added {
            r.public_token = field(a, &["public_token"]).map(SecretString::new);
            r.item_id = field(a, &["item", "item_id"]);
            r.institution = field(a, &["institution", "name"]);
            let acct = a
                .get("accounts")
                .and_then(Value::as_array)
                .and_then(|x| x.first());
            r.account_mask = acct.and_then(|x| field(x, &["mask"]));
            r.account_name = acct.and_then(|x| field(x, &["name"]));
        }
        Ok(r)
    }

    /// `/item/public_token/exchange`: (access token, item id).
    pub async fn exchange_public_token(
        &self,
        public_token: &SecretString,
    ) -> Result<(SecretString, String), RailError> {
        let v = self
            .call(
                "/item/public_token/exchange",
                &json!({ "public_token": public_token.expose() }),
            )
            .await?;
        let token = field(&v, &["access_token"])
            .ok_or_else(|| RailError::Permanent("plaid: no access_token".into()))?;
        let item = field(&v, &["item_id"])
            .ok_or_else(|| RailError::Permanent("plaid: no item_id".into()))?;
        Ok((SecretString::new(token), item))
    }

    /// `/item/remove`: the access token stops working for good.
    pub async fn item_remove(&self, access_token: &SecretString) -> Result<(), RailError> {
        match self
            .call(
                "/item/remove",
                &json!({ "access_token": access_token.expose() }),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Already gone at Plaid: as good as removed.
            Err(RailError::Unauthorized(_)) | Err(RailError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The concrete clients the connect flows use, at the same base URLs as the
/// rail roles.
pub struct Onboarding {
    pub qbo: QboClient,
    pub ramp: RampClient,
    pub plaid: PlaidClient,
    pub stripe: StripeClient,
}

/// A Ramp webhook subscription as Ramp lists it.
#[derive(Debug, Clone)]
pub struct RampSubscription {
    pub id: String,
    pub endpoint_url: String,
    pub status: String,
}

impl RampClient {
    /// `POST /developer/v1/webhooks`: a new subscription and its secret
    /// (shown only in this answer). Ramp then sends a `webhooks.verification`
    /// event to the endpoint.
    pub async fn create_webhook(
        &self,
        auth: &RailAuth,
        endpoint_url: &str,
        event_types: &[&str],
    ) -> Result<(RampSubscription, SecretString), RailError> {
        let v = self
            .post_json(
                auth,
                "webhooks",
                &json!({ "endpoint_url": endpoint_url, "event_types": event_types }),
            )
            .await?;
        let sub = subscription(&v)?;
        let secret = field(&v, &["secret"])
            .ok_or_else(|| RailError::Permanent("ramp: subscription without secret".into()))?;
        Ok((sub, SecretString::new(secret)))
    }

    /// `GET /developer/v1/webhooks` (all pages).
    pub async fn list_webhooks(&self, auth: &RailAuth) -> Result<Vec<RampSubscription>, RailError> {
        self.list_all(auth, "webhooks", &[])
            .await?
            .iter()
            .map(subscription)
            .collect()
    }

    /// `DELETE /developer/v1/webhooks/{id}`; an unknown one is as good.
    pub async fn delete_webhook(&self, auth: &RailAuth, id: &str) -> Result<(), RailError> {
        match self.delete_path(auth, &format!("webhooks/{id}")).await {
            Ok(()) | Err(RailError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /developer/v1/webhooks/{id}/verify` with the challenge Ramp sent.
    pub async fn verify_webhook(
        &self,
        auth: &RailAuth,
        id: &str,
        challenge: &str,
    ) -> Result<(), RailError> {
        self.post_json(
            auth,
            &format!("webhooks/{id}/verify"),
            &json!({ "challenge": challenge }),
        )
        .await
        .map(|_| ())
    }
}

fn subscription(v: &Value) -> Result<RampSubscription, RailError> {
    Ok(RampSubscription {
        id: field(v, &["id"])
            .ok_or_else(|| RailError::Permanent("ramp: subscription without id".into()))?,
        endpoint_url: field(v, &["endpoint_url"]).unwrap_or_default(),
        status: field(v, &["status"]).unwrap_or_default(),
    })
}
