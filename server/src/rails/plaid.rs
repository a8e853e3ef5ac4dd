//! Plaid adapter (the `Cash` role). Every call is a POST with a JSON body;
//! credentials go in the `PLAID-CLIENT-ID`/`PLAID-SECRET` headers, with
//! `Plaid-Version: 2020-09-14`. Errors are classified by `error_code`.
//! Balances and amounts are decimals in major units, parsed exactly.

use super::http::{decimal_text, plaid_error, RailHttp};
use super::{BankTxn, Cash, CashBalance, RailAuth, RailError, SecretString, TxnSyncPage};
use app::model::{Currency, Money};
use chrono::NaiveDate;
use serde_json::{json, Value};

const RAIL: &str = "plaid";
pub const PLAID_VERSION: &str = "2020-09-14";
const SYNC_COUNT: u32 = 500;
/// The `error_code` of a `/transactions/sync` page that failed because the
/// Item's data changed during pagination: Plaid says to restart the whole
/// update from the cursor of its first page.
pub const SYNC_MUTATION: &str = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION";

/// Whether `e` is that failure (a `Transient` error naming the code).
pub fn is_sync_mutation(e: &RailError) -> bool {
    matches!(e, RailError::Transient(m) if m.contains(SYNC_MUTATION))
}

pub struct PlaidClient {
    base_url: String,
    client_id: String,
    secret: SecretString,
    http: RailHttp,
}

impl PlaidClient {
    /// `base_url` without a trailing slash, e.g. `https://production.plaid.com`.
    pub fn new(base_url: String, client_id: String, secret: SecretString, http: RailHttp) -> Self {
        PlaidClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client_id,
            secret,
            http,
        }
    }

    /// POST `body` to `path`; a non-2xx answer becomes a classified error.
    pub async fn call(&self, path: &str, body: &Value) -> Result<Value, RailError> {
        let req = self
            .http
            .post(format!("{}{}", self.base_url, path))
            .header("PLAID-CLIENT-ID", &self.client_id)
            .header("PLAID-SECRET", self.secret.expose())
            .header("Plaid-Version", PLAID_VERSION)
            .json(body);
        let resp = self.http.execute(RAIL, "x-request-id", req).await?;
        let parsed = serde_json::from_slice::<Value>(&resp.body).unwrap_or(Value::Null);
        if !resp.is_success() {
            return Err(plaid_error(resp.status, &parsed));
        }
        if parsed.is_null() {
            return Err(RailError::Permanent(format!("{RAIL}: unparseable body")));
        }
        Ok(parsed)
    }
}

fn bad(what: &str) -> RailError {
    RailError::Permanent(format!("{RAIL}: {what}"))
}

fn currency_of(v: &Value) -> Result<Currency, RailError> {
    let code = v
        .get("iso_currency_code")
        .and_then(Value::as_str)
        .or_else(|| v.get("unofficial_currency_code").and_then(Value::as_str))
        .unwrap_or("USD");
    Currency::parse(code).map_err(|_| bad("bad currency code"))
}

fn money(v: Option<&Value>, cur: &Currency, what: &str) -> Result<Money, RailError> {
    let text = v
        .and_then(decimal_text)
        .ok_or_else(|| bad(&format!("missing {what}")))?;
    Money::parse_decimal(&text, cur.clone()).map_err(|_| bad(&format!("bad {what}")))
}

pub fn parse_balance(body: &Value) -> Result<CashBalance, RailError> {
    let accounts = body
        .get("accounts")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no accounts"))?;
    let acct = accounts
        .iter()
        .find(|a| a.get("type").and_then(Value::as_str) == Some("depository"))
        .ok_or_else(|| bad("no depository account"))?;
    let balances = acct.get("balances").ok_or_else(|| bad("no balances"))?;
    let cur = currency_of(balances)?;
    let current = money(balances.get("current"), &cur, "current balance")?;
    // `available` is nullable; Plaid says to fall back to `current`.
    let available = match balances.get("available") {
        Some(Value::Null) | None => current.clone(),
        v => money(v, &cur, "available balance")?,
    };
    Ok(CashBalance {
        account_id: acct
            .get("account_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no account_id"))?
            .to_owned(),
        available,
        current,
    })
}

pub fn parse_txn(v: &Value) -> Result<BankTxn, RailError> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let cur = currency_of(v)?;
    let date = s("date").ok_or_else(|| bad("transaction without date"))?;
    Ok(BankTxn {
        id: s("transaction_id").ok_or_else(|| bad("transaction without id"))?,
        account_id: s("account_id").unwrap_or_default(),
        amount: money(v.get("amount"), &cur, "transaction amount")?,
        date: NaiveDate::parse_from_str(&date, "%Y-%m-%d")
            .map_err(|_| bad("bad transaction date"))?,
        name: s("name").or_else(|| s("merchant_name")).unwrap_or_default(),
        pending: v.get("pending").and_then(Value::as_bool).unwrap_or(false),
        pending_transaction_id: s("pending_transaction_id"),
    })
}

pub fn parse_sync(body: &Value) -> Result<TxnSyncPage, RailError> {
    let list = |k: &str| -> Result<Vec<BankTxn>, RailError> {
        body.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(parse_txn)
            .collect()
    };
    let removed = body
        .get("removed")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            r.get("transaction_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    Ok(TxnSyncPage {
        added: list("added")?,
        modified: list("modified")?,
        removed,
        next_cursor: body
            .get("next_cursor")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no next_cursor"))?
            .to_owned(),
        has_more: body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[async_trait::async_trait]
impl Cash for PlaidClient {
    async fn balance(&self, auth: &RailAuth) -> Result<CashBalance, RailError> {
        let body = self
            .call(
                "/accounts/balance/get",
                &json!({"access_token": auth.access_token.expose()}),
            )
            .await?;
        parse_balance(&body)
    }

    async fn transactions_sync(
        &self,
        auth: &RailAuth,
        cursor: Option<&str>,
    ) -> Result<TxnSyncPage, RailError> {
        let mut req = json!({"access_token": auth.access_token.expose(), "count": SYNC_COUNT});
        if let Some(c) = cursor.filter(|c| !c.is_empty()) {
            req["cursor"] = json!(c);
        }
        parse_sync(&self.call("/transactions/sync", &req).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_parse_exactly() {
        let body: Value = serde_json::from_str(
            r#"{"accounts":[{"account_id":"c1","type":"credit","balances":{"current":5}},{"account_id":"a1","type":"depository","balances":{"available":100.1,"current":110.07,"iso_currency_code":"USD"}}]}"#,
        )
        .unwrap();
        let b = parse_balance(&body).unwrap();
        assert_eq!(
            (b.account_id.as_str(), b.available.minor, b.current.minor),
            ("a1", 10010, 11007)
        );
    }

    #[test]
    fn sync_page_parses() {
        let body: Value = serde_json::from_str(
            r#"{"added":[{"transaction_id":"t1","account_id":"a1","amount":-12.5,"iso_currency_code":"USD","date":"2026-01-02","name":"DEPOSIT","pending":false}],"modified":[],"removed":[{"transaction_id":"t0"}],"next_cursor":"abc","has_more":true}"#,
        )
        .unwrap();
        let p = parse_sync(&body).unwrap();
        assert_eq!(p.added[0].amount.minor, -1250);
        assert_eq!(p.removed, ["t0"]);
        assert!(p.has_more);
    }
}
