//! Ramp adapter (the `BillPay` role): entities, vendors (keyset pages), and
//! bill create/get/list. RowCol's payment id travels as `remote_id`. Ramp
//! documents no de-duplication on it (a second POST makes a second bill), so
//! the adapter offers a look-up by `remote_id` for the release job to use
//! before it ever repeats a create (see `jobs::release`).

use super::http::{error_for, RailHttp, RailResponse};
use super::{
    BillLookup, BillPay, CreateBill, RailAuth, RailError, RampBill, RampBillStatus, RampSetup,
    RampVendor,
};
use app::model::{Currency, Money};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

const RAIL: &str = "ramp";
const TRACE_HEADER: &str = "x-trace-id";
const PAGE_SIZE: &str = "100";

pub struct RampClient {
    base_url: String,
    http: RailHttp,
}

impl RampClient {
    /// `base_url` without a trailing slash, e.g. `https://api.ramp.com`.
    pub fn new(base_url: String, http: RailHttp) -> Self {
        RampClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/developer/v1/{}", self.base_url, path)
    }

    async fn send(
        &self,
        auth: &RailAuth,
        req: reqwest::RequestBuilder,
    ) -> Result<RailResponse, RailError> {
        let req = req
            .bearer_auth(auth.access_token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        let resp = self.http.execute(RAIL, TRACE_HEADER, req).await?;
        if !resp.is_success() {
            return Err(error_for(RAIL, &resp, &error_message(&resp)));
        }
        Ok(resp)
    }

    pub(super) async fn get_json(
        &self,
        auth: &RailAuth,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, RailError> {
        let resp = self
            .send(auth, self.http.get(self.url(path)).query(query))
            .await?;
        resp.json(RAIL)
    }

    /// POST a JSON body to `path`; the answer's JSON.
    pub(super) async fn post_json(
        &self,
        auth: &RailAuth,
        path: &str,
        body: &Value,
    ) -> Result<Value, RailError> {
        let resp = self
            .send(auth, self.http.post(self.url(path)).json(body))
            .await?;
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        resp.json(RAIL)
    }

    pub(super) async fn delete_path(&self, auth: &RailAuth, path: &str) -> Result<(), RailError> {
        self.send(auth, self.http.delete(self.url(path)))
            .await
            .map(|_| ())
    }

    /// Every item of a keyset-paginated list. `page.next` is a full URL; only
    /// its `start` is taken, and the request is rebuilt on our own base URL so
    /// the token never goes to a host we were not configured with.
    pub(super) async fn list_all(
        &self,
        auth: &RailAuth,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<Value>, RailError> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let mut q = vec![("page_size", PAGE_SIZE.to_owned())];
            q.extend(filters.iter().map(|(k, v)| (*k, v.clone())));
            if let Some(s) = &start {
                q.push(("start", s.clone()));
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body = self.get_json(auth, path, &q).await?;
            out.extend(
                body.get("data")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            match body
                .pointer("/page/next")
                .and_then(Value::as_str)
                .and_then(start_of)
            {
                Some(next) if Some(&next) != start.as_ref() => start = Some(next),
                _ => return Ok(out),
            }
        }
    }
}

/// The `start` parameter of a `page.next` URL.
fn start_of(next: &str) -> Option<String> {
    let url = reqwest::Url::parse(next).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "start")
        .map(|(_, v)| v.into_owned())
}

/// Ramp's error text: top-level `error_description`/`message`, then
/// `error_v2.message`, then `error` (the order the official SDK uses).
fn error_message(resp: &RailResponse) -> String {
    let Ok(body) = serde_json::from_slice::<Value>(&resp.body) else {
        return "non-JSON error body".into();
    };
    let s = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let code = s("/error_v2/error_code").unwrap_or_default();
    let msg = s("/error_description")
        .or_else(|| s("/message"))
        .or_else(|| s("/error_v2/message"))
        .or_else(|| body.get("error").map(|e| e.to_string()))
        .unwrap_or_else(|| "error".into());
    format!("{code} {msg}").trim().to_owned()
}

fn bad(what: &str) -> RailError {
    RailError::Permanent(format!("{RAIL}: {what}"))
}

fn str_at(v: &Value, p: &str) -> Option<String> {
    v.pointer(p).and_then(Value::as_str).map(str::to_owned)
}

/// A `CurrencyAmount {amount: <minor units>, currency_code}`.
fn currency_amount(v: &Value) -> Result<Money, RailError> {
    let minor = v
        .get("amount")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("amount is not integer minor units"))?;
    let cur = v
        .get("currency_code")
        .and_then(Value::as_str)
        .unwrap_or("USD");
    let cur = Currency::parse(cur).map_err(|_| bad("bad currency_code"))?;
    Ok(Money::new(minor, cur))
}

fn date_at(v: &Value, p: &str) -> Result<Option<NaiveDate>, RailError> {
    match str_at(v, p) {
        None => Ok(None),
        // Dates may come as dates or as date-times.
        Some(t) => NaiveDate::parse_from_str(t.get(..10).unwrap_or(&t), "%Y-%m-%d")
            .map(Some)
            .map_err(|_| bad(&format!("bad date at {p}"))),
    }
}

pub fn parse_bill(v: &Value) -> Result<RampBill, RailError> {
    let id = str_at(v, "/id").ok_or_else(|| bad("bill without id"))?;
    let status = match v.get("status").and_then(Value::as_str) {
        Some("PAID") => RampBillStatus::Paid,
        Some("OPEN") => RampBillStatus::Open,
        other => return Err(bad(&format!("unknown bill status {other:?}"))),
    };
    let paid_at = match str_at(v, "/paid_at") {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(&t)
                .map_err(|_| bad("bad paid_at"))?
                .with_timezone(&Utc),
        ),
    };
    // trace_id is `{descriptor, trace_id}` in the spec; accept a bare string too.
    let trace_id = match v.pointer("/payment/trace_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(o @ Value::Object(_)) => str_at(o, "/trace_id"),
        _ => None,
    };
    Ok(RampBill {
        remote_id: str_at(v, "/remote_id"),
        status,
        approval_status: str_at(v, "/approval_status"),
        amount: currency_amount(v.get("amount").ok_or_else(|| bad("bill without amount"))?)?,
        invoice_number: str_at(v, "/invoice_number"),
        paid_at,
        payment_date: date_at(v, "/payment/payment_date")?,
        trace_id,
        archived: v.get("archived_at").is_some_and(|a| !a.is_null()),
        id,
    })
}

/// The JSON body of `POST /developer/v1/bills` for an ACH bill.
pub fn create_body(req: &CreateBill) -> Value {
    let mut body = json!({
        "remote_id": req.remote_id,
        "entity_id": req.entity_id,
        "vendor_id": req.vendor_id,
        "vendor_contact_id": req.vendor_contact_id,
        "invoice_number": req.invoice_number,
        "invoice_currency": req.amount.currency.as_str(),
        "issued_at": req.issued_at.to_string(),
        "due_at": req.due_at.to_string(),
        "line_items": [{"amount": req.amount.to_decimal_string(), "memo": req.memo.clone().unwrap_or_default()}],
        "payment_method": "ACH",
        "payment_details": {
            "payment_arrival_date": req.payment_arrival_date.to_string(),
            "source_bank_account_id": req.source_bank_account_id,
            "vendor_account_id": req.vendor_account_id,
        },
    });
    if let Some(m) = &req.memo {
        body["memo"] = json!(m);
    }
    body
}

/// `(entity id, bank_account_id)` of an entity's `BILL_PAY_BANK_ACCOUNT`
/// among its `accounts[]` (`EntityProviderAccount`; `bank_account_id` is
/// null for accounts that are not bank accounts).
fn bill_pay_account(entity: &Value) -> Option<(String, String)> {
    let acct = entity.get("accounts")?.as_array()?.iter().find(|a| {
        a.get("usage_type").and_then(Value::as_str) == Some("BILL_PAY_BANK_ACCOUNT")
            && a.get("bank_account_id").is_some_and(Value::is_string)
    })?;
    Some((str_at(entity, "/id")?, str_at(acct, "/bank_account_id")?))
}

/// The vendor bank account to pay by ACH: one whose `payment_method` is ACH,
/// the vendor's default (`is_default`) first.
fn ach_account(accounts: &[Value]) -> Option<String> {
    let ach = |a: &&Value| a.get("payment_method").and_then(Value::as_str) == Some("ACH");
    let default = |a: &&Value| a.get("is_default").and_then(Value::as_bool) == Some(true);
    accounts
        .iter()
        .filter(ach)
        .find(default)
        .or_else(|| accounts.iter().find(ach))
        .and_then(|a| str_at(a, "/id"))
}

fn safe_id(id: &str) -> Result<&str, RailError> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(bad("bad id"))
    }
}

#[async_trait::async_trait]
impl BillPay for RampClient {
    async fn vendor_ach_account(
        &self,
        auth: &RailAuth,
        vendor_id: &str,
    ) -> Result<Option<String>, RailError> {
        let accounts = self
            .list_all(
                auth,
                &format!("vendors/{}/accounts", safe_id(vendor_id)?),
                &[],
            )
            .await?;
        Ok(ach_account(&accounts))
    }

    async fn bill_pay_setup(&self, auth: &RailAuth) -> Result<RampSetup, RailError> {
        let entities = self.list_all(auth, "entities", &[]).await?;
        let (entity_id, source_bank_account_id) = entities
            .iter()
            .find_map(bill_pay_account)
            .ok_or_else(|| bad("no entity with a BILL_PAY_BANK_ACCOUNT"))?;
        let mut vendors = Vec::new();
        for v in self.list_all(auth, "vendors", &[]).await? {
            if v.get("is_active").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let id = str_at(&v, "/id").ok_or_else(|| bad("vendor without id"))?;
            let accounts = self
                .list_all(auth, &format!("vendors/{}/accounts", safe_id(&id)?), &[])
                .await?;
            vendors.push(RampVendor {
                name: str_at(&v, "/name").unwrap_or_default(),
                accounting_vendor_remote_id: str_at(&v, "/accounting_vendor_remote_id"),
                contact_id: str_at(&v, "/contacts/0"),
                vendor_account_id: ach_account(&accounts),
                id,
            });
        }
        Ok(RampSetup {
            entity_id,
            source_bank_account_id,
            vendors,
        })
    }

    async fn bills_with_remote_id(
        &self,
        auth: &RailAuth,
        look: &BillLookup,
    ) -> Result<Vec<RampBill>, RailError> {
        // The list has no `remote_id` filter: narrow it by entity, vendor
        // and creation time, then match here.
        let since = look
            .created_since
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows = self
            .list_all(
                auth,
                "bills",
                &[
                    ("entity_id", look.entity_id.clone()),
                    ("vendor_id", look.vendor_id.clone()),
                    ("from_created_at", since),
                ],
            )
            .await?;
        rows.iter()
            .filter(|b| str_at(b, "/remote_id").as_deref() == Some(look.remote_id.as_str()))
            .map(parse_bill)
            .collect()
    }

    async fn create_bill(&self, auth: &RailAuth, req: &CreateBill) -> Result<RampBill, RailError> {
        let http = self.http.post(self.url("bills")).json(&create_body(req));
        let resp = self.send(auth, http).await?;
        parse_bill(&resp.json(RAIL)?)
    }

    async fn get_bill(&self, auth: &RailAuth, bill_id: &str) -> Result<RampBill, RailError> {
        let body = self
            .get_json(auth, &format!("bills/{}", safe_id(bill_id)?), &[])
            .await?;
        parse_bill(&body)
    }

    async fn bills_in_status(
        &self,
        auth: &RailAuth,
        status: RampBillStatus,
        created_since: DateTime<Utc>,
    ) -> Result<Vec<RampBill>, RailError> {
        let status = match status {
            RampBillStatus::Open => "OPEN",
            RampBillStatus::Paid => "PAID",
        };
        let since = created_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows = self
            .list_all(
                auth,
                "bills",
                &[
                    ("payment_status", status.to_owned()),
                    ("from_created_at", since),
                ],
            )
            .await?;
        rows.iter().map(parse_bill).collect()
    }

    async fn archive_bill(&self, auth: &RailAuth, bill_id: &str) -> Result<(), RailError> {
        self.delete_path(auth, &format!("bills/{}", safe_id(bill_id)?))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paid_bill() {
        let v = json!({"id":"b1","status":"PAID","approval_status":"APPROVED","remote_id":"p1",
            "amount":{"amount":123456,"currency_code":"USD"},"invoice_number":"INV-1",
            "paid_at":"2026-01-05T15:00:00Z","payment":{"payment_date":"2026-01-05","trace_id":{"descriptor":"ACH","trace_id":"T123"}}});
        let b = parse_bill(&v).unwrap();
        assert_eq!(b.amount, Money::usd(123456));
        assert_eq!(b.status, RampBillStatus::Paid);
        assert_eq!(b.trace_id.as_deref(), Some("T123"));
        assert_eq!(b.payment_date, NaiveDate::from_ymd_opt(2026, 1, 5));
    }

    #[test]
    fn create_body_uses_decimal_strings() {
        let d = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let req = CreateBill {
            remote_id: "p1".into(),
            entity_id: "e".into(),
            vendor_id: "v".into(),
            vendor_contact_id: "c".into(),
            invoice_number: "INV-1".into(),
            issued_at: d,
            due_at: d,
            amount: Money::usd(100005),
            memo: None,
            payment_arrival_date: d,
            source_bank_account_id: "s".into(),
            vendor_account_id: "a".into(),
        };
        let b = create_body(&req);
        assert_eq!(b["line_items"][0]["amount"], "1000.05");
        assert_eq!(b["payment_details"]["payment_arrival_date"], "2026-01-05");
        assert_eq!(b["invoice_currency"], "USD");
    }

    #[test]
    fn finds_the_bill_pay_bank_account_among_entity_accounts() {
        let e = json!({"id":"ent1","accounts":[
            {"usage_type":"CASH_ACCOUNT","bank_account_id":null,"internal_id":""},
            {"usage_type":"BILL_PAY_BANK_ACCOUNT","bank_account_id":"ba9","internal_id":""}]});
        assert_eq!(bill_pay_account(&e), Some(("ent1".into(), "ba9".into())));
        let none = json!({"id":"ent1","accounts":[{"usage_type":"BILL_PAY_BANK_ACCOUNT","bank_account_id":null}]});
        assert_eq!(bill_pay_account(&none), None);
        // The shape RowCol once read (`bank_accounts[]`) is not Ramp's.
        let old = json!({"id":"ent1","bank_accounts":[{"id":"ba9","usage_type":"BILL_PAY_BANK_ACCOUNT"}]});
        assert_eq!(bill_pay_account(&old), None);
    }

    #[test]
    fn picks_the_default_ach_vendor_account() {
        let accts = vec![
            json!({"id":"chk","payment_method":"CHECK","is_default":true,"currency":"USD"}),
            json!({"id":"a1","payment_method":"ACH","is_default":false,"currency":"USD"}),
            json!({"id":"a2","payment_method":"ACH","is_default":true,"currency":"USD"}),
        ];
        assert_eq!(ach_account(&accts).as_deref(), Some("a2"));
        assert_eq!(ach_account(&accts[..2]).as_deref(), Some("a1"));
        assert_eq!(ach_account(&accts[..1]), None);
    }

    #[test]
    fn next_url_start() {
        assert_eq!(
            start_of("http://h/sandbox/ramp/developer/v1/vendors?page_size=2&start=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(start_of("not a url"), None);
    }
}
