//! QuickBooks Online adapter (the `Ledger` role). Every call sends
//! `minorversion=75`, a Bearer token and `Accept: application/json`; queries
//! page with STARTPOSITION/MAXRESULTS. Amounts on the wire are decimals in
//! major units and are parsed exactly into [`Money`].

use super::http::{decimal_text, error_for, RailHttp, RailResponse};
use super::{Ledger, LedgerBill, LedgerBillPayment, LedgerChanges, RailAuth, RailError};
use app::model::{Currency, Money};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

const RAIL: &str = "qbo";
const TRACE_HEADER: &str = "intuit_tid";
pub const MINOR_VERSION: &str = "75";
const PAGE_SIZE: usize = 500;

pub struct QboClient {
    base_url: String,
    http: RailHttp,
}

impl QboClient {
    /// `base_url` without a trailing slash, e.g. `https://quickbooks.api.intuit.com`.
    pub fn new(base_url: String, http: RailHttp) -> Self {
        QboClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub(super) async fn get(
        &self,
        auth: &RailAuth,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, RailError> {
        let url = format!("{}/v3/company/{}/{}", self.base_url, auth.external_id, path);
        let req = self
            .http
            .get(url)
            .query(&[("minorversion", MINOR_VERSION)])
            .query(query)
            .bearer_auth(auth.access_token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        let resp = self.http.execute(RAIL, TRACE_HEADER, req).await?;
        check(resp)
    }

    /// A BillPayment's current `PrivateNote` and `SyncToken`.
    async fn private_note(
        &self,
        auth: &RailAuth,
        bill_payment_id: &str,
    ) -> Result<(Option<String>, String), RailError> {
        if !bill_payment_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RailError::Permanent(format!("{RAIL}: bad BillPayment id")));
        }
        let current = self
            .get(auth, &format!("billpayment/{bill_payment_id}"), &[])
            .await?;
        let p = get_ci(&current, "BillPayment");
        let sync_token = p
            .and_then(|p| p.get("SyncToken"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad("missing SyncToken", bill_payment_id))?;
        let note = p.and_then(|p| str_field(p, "PrivateNote"));
        Ok((note, sync_token.to_owned()))
    }

    /// Sparse update of a BillPayment's `PrivateNote` (the field is replaced
    /// whole) at `sync_token`. Returns the new SyncToken.
    async fn put_private_note(
        &self,
        auth: &RailAuth,
        bill_payment_id: &str,
        sync_token: &str,
        note: &str,
    ) -> Result<String, RailError> {
        let body = serde_json::json!({
            "Id": bill_payment_id,
            "SyncToken": sync_token,
            "sparse": true,
            "PrivateNote": note,
        });
        let url = format!(
            "{}/v3/company/{}/billpayment",
            self.base_url, auth.external_id
        );
        let req = self
            .http
            .post(url)
            .query(&[("minorversion", MINOR_VERSION)])
            .bearer_auth(auth.access_token.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        let updated = check(self.http.execute(RAIL, TRACE_HEADER, req).await?)?;
        get_ci(&updated, "BillPayment")
            .and_then(|p| p.get("SyncToken"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| bad("missing SyncToken", bill_payment_id))
    }

    /// Replace a BillPayment's `PrivateNote` (sparse update with the current
    /// SyncToken). Returns the new SyncToken.
    pub async fn write_private_note(
        &self,
        auth: &RailAuth,
        bill_payment_id: &str,
        note: &str,
    ) -> Result<String, RailError> {
        let (_, sync_token) = self.private_note(auth, bill_payment_id).await?;
        self.put_private_note(auth, bill_payment_id, &sync_token, note)
            .await
    }

    /// Append `note` to a BillPayment's `PrivateNote`, keeping what is there
    /// (a sparse update replaces the field, so it is read first, with its
    /// SyncToken). Idempotent: a note whose `marker` is already present is
    /// not appended again. `Ok(false)` when nothing had to be written.
    pub async fn append_private_note(
        &self,
        auth: &RailAuth,
        bill_payment_id: &str,
        marker: &str,
        note: &str,
    ) -> Result<bool, RailError> {
        // Someone else may edit the BillPayment between our read and write:
        // QBO refuses the stale SyncToken (5010), so read again.
        let mut tries = 0;
        loop {
            let (existing, sync_token) = self.private_note(auth, bill_payment_id).await?;
            let Some(full) = appended_note(existing.as_deref(), marker, note)? else {
                return Ok(false);
            };
            match self
                .put_private_note(auth, bill_payment_id, &sync_token, &full)
                .await
            {
                Err(RailError::Rejected(m)) if m.contains("[5010]") && tries < 2 => tries += 1,
                other => return other.map(|_| true),
            }
        }
    }

    /// Run a `SELECT * FROM <entity> …` over all pages.
    pub async fn query_all(
        &self,
        auth: &RailAuth,
        entity: &str,
        filter: &str,
    ) -> Result<Vec<Value>, RailError> {
        let mut out = Vec::new();
        let mut start = 1usize;
        loop {
            let q = format!("SELECT * FROM {entity}{filter} ORDERBY Id STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}");
            let body = self.get(auth, "query", &[("query", q.as_str())]).await?;
            let resp = get_ci(&body, "QueryResponse").ok_or_else(|| {
                RailError::Permanent(format!("{RAIL}: query response without QueryResponse"))
            })?;
            let page = resp
                .get(entity)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = page.len();
            out.extend(page);
            if n < PAGE_SIZE {
                return Ok(out);
            }
            start += n;
        }
    }
}

/// A successful response's JSON, or the classified error. QBO answers a read
/// of a missing object with 400 + Fault code 610 ("Object Not Found"); that
/// is NotFound, not Permanent.
fn check(resp: RailResponse) -> Result<Value, RailError> {
    if resp.is_success() {
        return resp.json(RAIL);
    }
    let (code, msg) = fault_detail(&resp);
    if resp.status == 400 && code == "610" {
        return Err(RailError::NotFound(format!(
            "{RAIL} 400: {msg}{}",
            resp.trace_id
                .as_deref()
                .map(|t| format!(" (trace {t})"))
                .unwrap_or_default()
        )));
    }
    match error_for(RAIL, &resp, &msg) {
        // QBO sends no Retry-After with its 429 and asks for 60 s before the
        // next try: retrying sooner only meets the throttle
        // again and spends the realm's minute (rails.md §1: "Wait 60 s").
        RailError::RateLimited { retry_after: None } => Err(RailError::RateLimited {
            retry_after: Some(THROTTLE_WAIT),
        }),
        other => Err(other),
    }
}

/// How long QBO asks a throttled caller to wait.
pub const THROTTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A key looked up without regard to case (QBO sends `Fault` and `fault`).
fn get_ci<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The first Fault error's code and "[code] Message Detail", whatever the
/// key casing.
fn fault_detail(resp: &RailResponse) -> (String, String) {
    let Ok(body) = serde_json::from_slice::<Value>(&resp.body) else {
        return (String::new(), "non-JSON error body".into());
    };
    let Some(fault) = get_ci(&body, "Fault") else {
        // OAuth-style error bodies.
        let e = body.get("error").and_then(Value::as_str);
        return (String::new(), e.unwrap_or("error without Fault").to_owned());
    };
    let first = get_ci(fault, "Error").and_then(|e| e.as_array()?.first().cloned());
    let Some(err) = first else {
        return (String::new(), "Fault without Error".into());
    };
    let s = |k: &str| {
        get_ci(&err, k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let msg = format!("[{}] {} {}", s("code"), s("Message"), s("Detail"));
    (s("code"), msg.trim().to_owned())
}

/// QBO's limit on a transaction's `PrivateNote` (characters).
pub const PRIVATE_NOTE_MAX: usize = 4000;

/// `existing` with `note` appended on a new line, or `None` when a note
/// carrying `marker` is already there. What someone else wrote is kept
/// whole; our note is shortened to fit [`PRIVATE_NOTE_MAX`], and refused
/// when not even its marker fits (it could not be found again).
pub fn appended_note(
    existing: Option<&str>,
    marker: &str,
    note: &str,
) -> Result<Option<String>, RailError> {
    let existing = existing.unwrap_or("");
    if !marker.is_empty() && existing.contains(marker) {
        return Ok(None);
    }
    let sep = if existing.is_empty() { "" } else { "\n" };
    let used = existing.chars().count() + sep.chars().count();
    let room = PRIVATE_NOTE_MAX.saturating_sub(used);
    if room < marker.chars().count() {
        return Err(RailError::Permanent(format!(
            "{RAIL}: PrivateNote has no room left for RowCol's note"
        )));
    }
    let ours: String = note.chars().take(room).collect();
    Ok(Some(format!("{existing}{sep}{ours}")))
}

fn bad(what: &str, id: &str) -> RailError {
    RailError::Permanent(format!("{RAIL}: {what} in entity {id}"))
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn money_field(v: &Value, k: &str, cur: &Currency, id: &str) -> Result<Money, RailError> {
    let text = v
        .get(k)
        .and_then(decimal_text)
        .ok_or_else(|| bad(&format!("missing {k}"), id))?;
    Money::parse_decimal(&text, cur.clone()).map_err(|_| bad(&format!("bad amount {k}"), id))
}

fn date_field(v: &Value, k: &str, id: &str) -> Result<NaiveDate, RailError> {
    let t = v
        .get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("missing {k}"), id))?;
    NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| bad(&format!("bad date {k}"), id))
}

fn currency_of(v: &Value) -> Currency {
    v.get("CurrencyRef")
        .and_then(|c| c.get("value"))
        .and_then(Value::as_str)
        .and_then(|c| Currency::parse(c).ok())
        .unwrap_or_else(Currency::usd)
}

pub fn parse_bill(v: &Value) -> Result<LedgerBill, RailError> {
    let id = str_field(v, "Id").ok_or_else(|| bad("missing Id", "?"))?;
    let cur = currency_of(v);
    let vendor = v
        .get("VendorRef")
        .ok_or_else(|| bad("missing VendorRef", &id))?;
    let vendor_id =
        str_field(vendor, "value").ok_or_else(|| bad("missing VendorRef.value", &id))?;
    let txn_date = date_field(v, "TxnDate", &id)?;
    let due_date = if v.get("DueDate").is_some() {
        date_field(v, "DueDate", &id)?
    } else {
        txn_date
    };
    Ok(LedgerBill {
        vendor_name: str_field(vendor, "name").unwrap_or_default(),
        vendor_id,
        doc_number: str_field(v, "DocNumber"),
        total: money_field(v, "TotalAmt", &cur, &id)?,
        balance: money_field(v, "Balance", &cur, &id)?,
        txn_date,
        due_date,
        id,
    })
}

/// The payment if any of its lines links `bill_id` as a Bill.
pub fn parse_bill_payment_for(
    v: &Value,
    bill_id: &str,
) -> Result<Option<LedgerBillPayment>, RailError> {
    let id = str_field(v, "Id").ok_or_else(|| bad("missing Id", "?"))?;
    let cur = currency_of(v);
    let mut linked = Money::zero(cur.clone());
    let mut found = false;
    for line in v
        .get("Line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let links = line
            .get("LinkedTxn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let hits = links.into_iter().any(|l| {
            str_field(l, "TxnId").as_deref() == Some(bill_id)
                && str_field(l, "TxnType").as_deref() == Some("Bill")
        });
        if hits {
            found = true;
            let amt = money_field(line, "Amount", &cur, &id)?;
            linked = linked
                .checked_add(&amt)
                .map_err(|_| bad("amount overflow", &id))?;
        }
    }
    if !found {
        return Ok(None);
    }
    Ok(Some(LedgerBillPayment {
        txn_date: date_field(v, "TxnDate", &id)?,
        total: money_field(v, "TotalAmt", &cur, &id)?,
        amount_for_bill: linked,
        private_note: str_field(v, "PrivateNote"),
        id,
    }))
}

/// Escape a value for a single-quoted QBO query literal.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

#[async_trait::async_trait]
impl Ledger for QboClient {
    async fn open_bills(&self, auth: &RailAuth) -> Result<Vec<LedgerBill>, RailError> {
        let rows = self.query_all(auth, "Bill", " WHERE Balance > '0'").await?;
        rows.iter().map(parse_bill).collect()
    }

    async fn changed_bills(
        &self,
        auth: &RailAuth,
        since: DateTime<Utc>,
    ) -> Result<LedgerChanges, RailError> {
        let since = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = self
            .get(
                auth,
                "cdc",
                &[("entities", "Bill"), ("changedSince", since.as_str())],
            )
            .await?;
        super::qbo_cdc::parse_changes(&body)
    }

    async fn bills_by_ids(
        &self,
        auth: &RailAuth,
        bill_ids: &[String],
    ) -> Result<Vec<LedgerBill>, RailError> {
        if bill_ids
            .iter()
            .any(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(RailError::Permanent(format!("{RAIL}: bad bill id")));
        }
        let mut out = Vec::with_capacity(bill_ids.len());
        // QBO's query language has IN; a long list is split so the query
        // string stays well inside a URL.
        for chunk in bill_ids.chunks(100) {
            let list: Vec<String> = chunk.iter().map(|id| format!("'{}'", quote(id))).collect();
            let rows = self
                .query_all(auth, "Bill", &format!(" WHERE Id IN ({})", list.join(",")))
                .await?;
            for r in &rows {
                out.push(parse_bill(r)?);
            }
        }
        Ok(out)
    }

    async fn get_bill(
        &self,
        auth: &RailAuth,
        bill_id: &str,
    ) -> Result<Option<LedgerBill>, RailError> {
        if !bill_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RailError::Permanent(format!("{RAIL}: bad bill id")));
        }
        let body = match self.get(auth, &format!("bill/{bill_id}"), &[]).await {
            Ok(b) => b,
            // 610 Object Not Found: the bill was deleted.
            Err(RailError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let bill = get_ci(&body, "Bill").ok_or_else(|| bad("no Bill in response", bill_id))?;
        parse_bill(bill).map(Some)
    }

    async fn bill_payments_for_bill(
        &self,
        auth: &RailAuth,
        bill_id: &str,
    ) -> Result<Vec<LedgerBillPayment>, RailError> {
        // The query language cannot filter on LinkedTxn, so narrow by the
        // bill's vendor and match the lines here.
        if !bill_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RailError::Permanent(format!("{RAIL}: bad bill id")));
        }
        let bill = self.get(auth, &format!("bill/{bill_id}"), &[]).await?;
        let bill = get_ci(&bill, "Bill").ok_or_else(|| bad("no Bill in response", bill_id))?;
        let vendor = bill
            .get("VendorRef")
            .and_then(|r| r.get("value"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad("missing VendorRef", bill_id))?;
        let filter = format!(" WHERE VendorRef = '{}'", quote(vendor));
        let rows = self.query_all(auth, "BillPayment", &filter).await?;
        let mut out = Vec::new();
        for row in &rows {
            if let Some(p) = parse_bill_payment_for(row, bill_id)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn annotate_bill_payment(
        &self,
        auth: &RailAuth,
        bill_payment_id: &str,
        marker: &str,
        note: &str,
    ) -> Result<(), RailError> {
        self.append_private_note(auth, bill_payment_id, marker, note)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttled_call_waits_the_60_seconds_qbo_asks_for() {
        let throttled = RailResponse {
            status: 429,
            trace_id: Some("tid".into()),
            retry_after: None,
            body: br#"{"Fault":{"Error":[{"Message":"ThrottleExceeded","code":"3001"}],"type":"ThrottleExceeded"}}"#.to_vec(),
        };
        assert!(matches!(
            check(throttled),
            Err(RailError::RateLimited { retry_after: Some(d) }) if d.as_secs() == 60
        ));
        let unavailable = RailResponse {
            status: 503,
            trace_id: None,
            retry_after: None,
            body: vec![],
        };
        assert!(matches!(check(unavailable), Err(RailError::Transient(_))));
    }

    #[test]
    fn a_note_is_appended_once_and_kept_within_the_limit() {
        let first = appended_note(
            Some("Ramp bill 1"),
            "RowCol payment p1:",
            "RowCol payment p1: ok",
        )
        .unwrap()
        .unwrap();
        assert_eq!(first, "Ramp bill 1\nRowCol payment p1: ok");
        assert_eq!(
            appended_note(Some(&first), "RowCol payment p1:", "RowCol payment p1: ok").unwrap(),
            None
        );
        assert_eq!(
            appended_note(None, "m", "m note").unwrap().as_deref(),
            Some("m note")
        );
        let long = "x".repeat(PRIVATE_NOTE_MAX - 20);
        let capped = appended_note(
            Some(&long),
            "RowCol payment p1:",
            &"RowCol payment p1: ".repeat(50),
        )
        .unwrap()
        .unwrap();
        assert_eq!(capped.chars().count(), PRIVATE_NOTE_MAX);
        assert!(capped.starts_with(&long) && capped.contains("RowCol payment p1:"));
        let full = "x".repeat(PRIVATE_NOTE_MAX - 5);
        assert!(appended_note(Some(&full), "RowCol payment p1:", "RowCol payment p1: ok").is_err());
    }

    #[test]
    fn parses_bill_and_payment_exactly() {
        let bill: Value = serde_json::from_str(
            r#"{"Id":"7","VendorRef":{"value":"3","name":"Acme"},"DocNumber":"INV-1","TotalAmt":1234.56,"Balance":0.1,"TxnDate":"2026-01-02","DueDate":"2026-02-01"}"#,
        )
        .unwrap();
        let b = parse_bill(&bill).unwrap();
        assert_eq!((b.total.minor, b.balance.minor), (123456, 10));
        assert_eq!(b.vendor_name, "Acme");
        let pay: Value = serde_json::from_str(
            r#"{"Id":"9","TxnDate":"2026-02-01","TotalAmt":300.0,"Line":[{"Amount":100.25,"LinkedTxn":[{"TxnId":"7","TxnType":"Bill"}]},{"Amount":199.75,"LinkedTxn":[{"TxnId":"8","TxnType":"Bill"}]}]}"#,
        )
        .unwrap();
        let p = parse_bill_payment_for(&pay, "7").unwrap().unwrap();
        assert_eq!((p.total.minor, p.amount_for_bill.minor), (30000, 10025));
        assert!(parse_bill_payment_for(&pay, "99").unwrap().is_none());
    }

    #[test]
    fn fault_casing_is_ignored() {
        let resp = RailResponse {
            status: 401,
            trace_id: Some("tid".into()),
            retry_after: None,
            body: br#"{"fault":{"error":[{"message":"AuthenticationFailed","detail":"d","code":"3200"}],"type":"AUTHENTICATION"}}"#.to_vec(),
        };
        let (code, m) = fault_detail(&resp);
        assert_eq!(code, "3200");
        assert!(
            m.contains("3200") && m.contains("AuthenticationFailed"),
            "{m}"
        );
    }
}
