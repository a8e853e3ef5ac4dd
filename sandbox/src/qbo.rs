//! The QuickBooks Online simulator: query language, entity reads, and
//! BillPayment create (plus sparse update of `PrivateNote`).

use super::state::*;
use super::wire::decimal_number as num;
use super::wire::{bearer_token, decimal_text, minor_exponent, parse_minor};
use super::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;
use tokio::sync::MutexGuard;

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/v3/company/{realm}/query", get(query_get).post(query_post))
        .route("/v3/company/{realm}/{entity}", post(entity_post))
        .route("/v3/company/{realm}/{entity}/{id}", get(entity_get))
        .layer(axum::middleware::map_response(add_tid))
}

async fn add_tid(mut res: Response) -> Response {
    let id = format!("1-{}", uuid::Uuid::new_v4().simple());
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("intuit_tid", v);
    }
    res
}

/// UTC-7, checked at compile time.
const PACIFIC: FixedOffset = match FixedOffset::west_opt(7 * 3600) {
    Some(o) => o,
    None => panic!("a valid offset"),
};

/// QBO speaks Pacific time offsets.
fn qtime(t: DateTime<Utc>) -> String {
    t.with_timezone(&PACIFIC)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

fn fault(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    detail: &str,
    now: DateTime<Utc>,
) -> Response {
    let body = json!({
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code, "element": ""}], "type": kind},
        "time": qtime(now),
    });
    (status, Json(body)).into_response()
}

fn validation(code: &str, message: &str, detail: &str, now: DateTime<Utc>) -> Response {
    fault(
        StatusCode::BAD_REQUEST,
        "ValidationFault",
        code,
        message,
        detail,
        now,
    )
}

/// Validation faults on the (rare) error path of helpers are boxed: a
/// Response is large.
fn vbox(code: &str, message: &str, detail: &str, now: DateTime<Utc>) -> Box<Response> {
    Box::new(validation(code, message, detail, now))
}

async fn authed<'a>(
    sb: &'a Sandbox,
    headers: &HeaderMap,
    realm: &str,
    q: &HashMap<String, String>,
) -> Result<(MutexGuard<'a, SimState>, usize), Response> {
    let now = sb.inner.clock.now();
    let token = bearer_token(headers);
    let st = sb.inner.state.lock().await;
    let ci = st
        .clients
        .iter()
        .position(|c| c.qbo.realm_id == realm && Some(c.qbo.access_token.as_str()) == token);
    let Some(ci) = ci else {
        return Err(fault(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFault",
            "3200",
            "message=AuthenticationFailed; errorCode=003200; statusCode=401",
            "Token expired or invalid",
            now,
        ));
    };
    if let Some(mv) = q.get("minorversion") {
        if !mv.parse::<u32>().is_ok_and(|v| v >= 75) {
            return Err(validation(
                "2010",
                "Invalid minorversion",
                "minorversion must be 75 or more",
                now,
            ));
        }
    }
    Ok((st, ci))
}

fn meta(created: DateTime<Utc>, updated: DateTime<Utc>) -> Value {
    json!({"CreateTime": qtime(created), "LastUpdatedTime": qtime(updated)})
}

fn render_account(a: &QboAccount, cur: &str) -> Value {
    json!({
        "Id": a.id, "SyncToken": "0", "domain": "QBO", "sparse": false, "Name": a.name, "FullyQualifiedName": a.name,
        "AccountType": a.account_type, "AccountSubType": a.account_sub_type, "Classification": a.classification,
        "Active": true, "SubAccount": false, "CurrentBalance": num(a.current_balance_cents),
        "CurrentBalanceWithSubAccounts": num(a.current_balance_cents), "CurrencyRef": {"value": cur},
        "MetaData": meta(a.created, a.updated),
    })
}

fn render_vendor(v: &QboVendor, realm: &QboRealm, cur: &str) -> Value {
    let balance: i64 = realm
        .bills
        .iter()
        .filter(|b| b.vendor_id == v.id)
        .map(|b| b.balance_cents)
        .sum();
    json!({
        "Id": v.id, "SyncToken": "0", "domain": "QBO", "sparse": false, "DisplayName": v.display_name,
        "CompanyName": v.display_name, "PrintOnCheckName": v.display_name, "Active": v.active,
        "Balance": num(balance), "CurrencyRef": {"value": cur}, "MetaData": meta(v.created, v.updated),
    })
}

fn vendor_ref(realm: &QboRealm, id: &str) -> Value {
    json!({"value": id, "name": realm.vendor(id).map(|v| v.display_name.clone()).unwrap_or_default()})
}

fn account_ref(realm: &QboRealm, id: &str) -> Value {
    let name = realm
        .accounts
        .iter()
        .find(|a| a.id == id)
        .map(|a| a.name.clone())
        .unwrap_or_default();
    json!({"value": id, "name": name})
}

fn render_bill(b: &QboBill, realm: &QboRealm, cur: &str) -> Value {
    let ap = realm
        .account_named("Accounts Payable (A/P)")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let linked: Vec<Value> = realm
        .bill_payments
        .iter()
        .filter(|p| p.lines.iter().any(|l| l.bill_id == b.id))
        .map(|p| json!({"TxnId": p.id, "TxnType": "BillPaymentCheck"}))
        .collect();
    json!({
        "Id": b.id, "SyncToken": b.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "MetaData": meta(b.created, b.updated), "DocNumber": b.doc_number,
        "TxnDate": b.txn_date.to_string(), "DueDate": b.due_date.to_string(),
        "CurrencyRef": {"value": cur, "name": "United States Dollar"},
        "VendorRef": vendor_ref(realm, &b.vendor_id), "APAccountRef": account_ref(realm, &ap),
        "TotalAmt": num(b.total_cents), "Balance": num(b.balance_cents), "LinkedTxn": linked,
        "Line": [{
            "Id": "1", "LineNum": 1, "Description": b.description, "Amount": num(b.total_cents),
            "DetailType": "AccountBasedExpenseLineDetail",
            "AccountBasedExpenseLineDetail": {"AccountRef": account_ref(realm, &b.expense_account_id), "BillableStatus": "NotBillable"},
        }],
    })
}

fn render_bill_payment(p: &QboBillPayment, realm: &QboRealm, cur: &str) -> Value {
    let ap = realm
        .account_named("Accounts Payable (A/P)")
        .map(|a| a.id.clone())
        .unwrap_or_default();
    let mut v = json!({
        "Id": p.id, "SyncToken": p.sync_token.to_string(), "domain": "QBO", "sparse": false,
        "MetaData": meta(p.created, p.updated), "TxnDate": p.txn_date.to_string(),
        "CurrencyRef": {"value": cur, "name": "United States Dollar"},
        "VendorRef": vendor_ref(realm, &p.vendor_id), "APAccountRef": account_ref(realm, &ap),
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": account_ref(realm, &p.bank_account_id), "PrintStatus": "NotSet"},
        "TotalAmt": num(p.total_cents),
        "Line": p.lines.iter().map(|l| json!({"Amount": num(l.amount_cents), "LinkedTxn": [{"TxnId": l.bill_id, "TxnType": "Bill"}]})).collect::<Vec<_>>(),
    });
    if let Some(n) = &p.private_note {
        v["PrivateNote"] = json!(n);
    }
    if let Some(d) = &p.doc_number {
        v["DocNumber"] = json!(d);
    }
    v
}

/// Canonical entity names the simulator serves.
fn entity_name(s: &str) -> Option<&'static str> {
    ["Bill", "BillPayment", "Vendor", "Account"]
        .into_iter()
        .find(|e| e.eq_ignore_ascii_case(s))
}

fn render_all(c: &SimClient, entity: &str) -> Vec<Value> {
    let (realm, cur) = (&c.qbo, c.currency.as_str());
    match entity {
        "Bill" => realm
            .bills
            .iter()
            .map(|b| render_bill(b, realm, cur))
            .collect(),
        "BillPayment" => realm
            .bill_payments
            .iter()
            .map(|p| render_bill_payment(p, realm, cur))
            .collect(),
        "Vendor" => realm
            .vendors
            .iter()
            .map(|v| render_vendor(v, realm, cur))
            .collect(),
        "Account" => realm
            .accounts
            .iter()
            .map(|a| render_account(a, cur))
            .collect(),
        _ => vec![],
    }
}

// ----------------------------------------------------------------- query

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Sym(&'static str),
}

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = q.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err("unterminated string literal".into()),
                    Some('\\') if cs.get(i + 1).is_some() => {
                        s.push(cs[i + 1]);
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == ':' {
            let start = i;
            while i < cs.len()
                && (cs[i].is_alphanumeric() || matches!(cs[i], '_' | '.' | '-' | ':'))
            {
                i += 1;
            }
            out.push(Tok::Word(cs[start..i].iter().collect()));
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let sym = match two.as_str() {
                "<=" => Some("<="),
                ">=" => Some(">="),
                "!=" => Some("!="),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let s = match c {
                '=' => "=",
                '<' => "<",
                '>' => ">",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '*' => "*",
                _ => return Err(format!("unexpected character '{c}'")),
            };
            out.push(Tok::Sym(s));
            i += 1;
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Op {
    Cmp(&'static str, String),
    In(Vec<String>),
    Like(String),
}

#[derive(Debug, PartialEq)]
struct Cond {
    field: String,
    op: Op,
}

#[derive(Debug, PartialEq)]
struct ParsedQuery {
    count: bool,
    entity: &'static str,
    conds: Vec<Cond>,
    order: Vec<(String, bool)>,
    start: usize,
    max: usize,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> Result<(), String> {
        if self.is_kw(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {kw}"))
        }
    }
    fn sym(&mut self, s: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Sym(x)) if x == s => Ok(()),
            _ => Err(format!("expected '{s}'")),
        }
    }
    fn word(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            _ => Err(format!("expected {what}")),
        }
    }
    fn literal(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            // Unquoted numbers and booleans are tolerated.
            Some(Tok::Word(w)) => Ok(w),
            _ => Err("expected a value".into()),
        }
    }
    fn number(&mut self, what: &str) -> Result<usize, String> {
        let w = self.word(what)?;
        w.parse().map_err(|_| format!("{what} must be a number"))
    }
}

fn parse_query(q: &str) -> Result<ParsedQuery, String> {
    let mut p = Parser {
        toks: tokenize(q)?,
        pos: 0,
    };
    p.kw("SELECT")?;
    let count = if p.is_kw("count") {
        p.pos += 1;
        p.sym("(")?;
        p.sym("*")?;
        p.sym(")")?;
        true
    } else {
        p.sym("*")?;
        false
    };
    p.kw("FROM")?;
    let ent = p.word("an entity")?;
    let entity = entity_name(&ent).ok_or_else(|| format!("unsupported entity {ent}"))?;
    let mut q = ParsedQuery {
        count,
        entity,
        conds: vec![],
        order: vec![],
        start: 1,
        max: 100,
    };
    if p.is_kw("WHERE") {
        p.pos += 1;
        loop {
            let field = p.word("a field name")?;
            let op = if p.is_kw("IN") {
                p.pos += 1;
                p.sym("(")?;
                let mut vals = vec![p.literal()?];
                while matches!(p.peek(), Some(Tok::Sym(","))) {
                    p.pos += 1;
                    vals.push(p.literal()?);
                }
                p.sym(")")?;
                Op::In(vals)
            } else if p.is_kw("LIKE") {
                p.pos += 1;
                Op::Like(p.literal()?)
            } else {
                match p.next() {
                    Some(Tok::Sym(s)) if matches!(s, "=" | "<" | ">" | "<=" | ">=" | "!=") => {
                        Op::Cmp(s, p.literal()?)
                    }
                    _ => return Err(format!("expected an operator after {field}")),
                }
            };
            q.conds.push(Cond { field, op });
            if p.is_kw("AND") {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    if p.is_kw("ORDERBY") || p.is_kw("ORDER") {
        if p.is_kw("ORDER") {
            p.pos += 1;
            p.kw("BY")?;
        } else {
            p.pos += 1;
        }
        loop {
            let f = p.word("a field to order by")?;
            let desc = if p.is_kw("DESC") {
                p.pos += 1;
                true
            } else {
                if p.is_kw("ASC") {
                    p.pos += 1;
                }
                false
            };
            q.order.push((f, desc));
            if matches!(p.peek(), Some(Tok::Sym(","))) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    if p.is_kw("STARTPOSITION") {
        p.pos += 1;
        q.start = p.number("STARTPOSITION")?.max(1);
    }
    if p.is_kw("MAXRESULTS") {
        p.pos += 1;
        q.max = p.number("MAXRESULTS")?.clamp(1, 1000);
    }
    if let Some(t) = p.peek() {
        return Err(format!("unexpected token {t:?}"));
    }
    Ok(q)
}

/// A field by (dotted, case-insensitive) path; `*Ref` objects compare by `value`.
fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)?;
    }
    match cur {
        Value::Object(o) => o.get("value"),
        other => Some(other),
    }
}

/// An exact decimal, scaled by 10^6, for numeric comparison.
fn dec_key(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, d) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (w, f) = d.split_once('.').unwrap_or((d, ""));
    if w.is_empty()
        || f.len() > 6
        || !w.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut n: i128 = w.parse().ok()?;
    n = n.checked_mul(1_000_000)?;
    let frac: i128 = if f.is_empty() {
        0
    } else {
        format!("{f:0<6}").parse().ok()?
    };
    let v = n.checked_add(frac)?;
    Some(if neg { -v } else { v })
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(_) => decimal_text(v).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn compare(field: &Value, lit: &str) -> Ordering {
    let f = text_of(field);
    if let (Some(a), Some(b)) = (dec_key(&f), dec_key(lit)) {
        return a.cmp(&b);
    }
    if let (Ok(a), Ok(b)) = (
        DateTime::parse_from_rfc3339(&f),
        DateTime::parse_from_rfc3339(lit),
    ) {
        return a.cmp(&b);
    }
    if f.eq_ignore_ascii_case(lit) {
        return Ordering::Equal;
    }
    f.to_lowercase().cmp(&lit.to_lowercase())
}

fn like(text: &str, pat: &str) -> bool {
    let (t, p) = (text.to_lowercase(), pat.to_lowercase());
    let parts: Vec<&str> = p.split('%').collect();
    if parts.len() == 1 {
        return t == p;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

fn matches(v: &Value, c: &Cond) -> bool {
    let Some(f) = field(v, &c.field) else {
        return false;
    };
    match &c.op {
        Op::Cmp(op, lit) => {
            let o = compare(f, lit);
            match *op {
                "=" => o == Ordering::Equal,
                "!=" => o != Ordering::Equal,
                "<" => o == Ordering::Less,
                ">" => o == Ordering::Greater,
                "<=" => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        Op::In(vals) => vals.iter().any(|l| compare(f, l) == Ordering::Equal),
        Op::Like(p) => like(&text_of(f), p),
    }
}

fn run_query(c: &SimClient, q: &str, now: DateTime<Utc>) -> Response {
    let parsed = match parse_query(q) {
        Ok(p) => p,
        Err(e) => {
            return validation(
                "4000",
                "Error parsing query",
                &format!("QueryParserError: {e}"),
                now,
            )
        }
    };
    let mut rows: Vec<Value> = render_all(c, parsed.entity)
        .into_iter()
        .filter(|v| parsed.conds.iter().all(|cnd| matches(v, cnd)))
        .collect();
    let total = rows.len();
    if parsed.count {
        return Json(json!({"QueryResponse": {"totalCount": total}, "time": qtime(now)}))
            .into_response();
    }
    let order = if parsed.order.is_empty() {
        vec![("Id".to_owned(), false)]
    } else {
        parsed.order
    };
    rows.sort_by(|a, b| {
        for (f, desc) in &order {
            let o = match (field(a, f), field(b, f)) {
                (Some(x), Some(y)) => compare(x, &text_of(y)),
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    let page: Vec<Value> = rows
        .into_iter()
        .skip(parsed.start - 1)
        .take(parsed.max)
        .collect();
    let mut qr = Map::new();
    if !page.is_empty() {
        qr.insert("startPosition".into(), json!(parsed.start));
        qr.insert("maxResults".into(), json!(page.len()));
        qr.insert("totalCount".into(), json!(total));
        qr.insert(parsed.entity.into(), Value::Array(page));
    }
    Json(json!({"QueryResponse": qr, "time": qtime(now)})).into_response()
}

async fn query_get(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    match q.get("query") {
        Some(text) => run_query(&st.clients[ci], text, now),
        None => validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            "query",
            now,
        ),
    }
}

async fn query_post(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    match std::str::from_utf8(&body) {
        Ok(text) => run_query(&st.clients[ci], text, now),
        Err(_) => validation("500", "Unsupported Operation", "body is not UTF-8", now),
    }
}

async fn entity_get(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((realm, entity, id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    let Some(name) = entity_name(&entity) else {
        return fault(
            StatusCode::NOT_FOUND,
            "ValidationFault",
            "0",
            "Unsupported entity",
            &entity,
            now,
        );
    };
    let found = render_all(&st.clients[ci], name)
        .into_iter()
        .find(|v| v.get("Id").and_then(Value::as_str) == Some(id.as_str()));
    match found {
        Some(v) => Json(json!({ name: v, "time": qtime(now) })).into_response(),
        None => validation("610", "Object Not Found", &format!("Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. {name} {id}"), now),
    }
}

fn amount(v: &Value, field: &str, now: DateTime<Utc>) -> Result<i64, Box<Response>> {
    let t = v
        .get(field)
        .and_then(decimal_text)
        .ok_or_else(|| vbox("2020", "Required param missing", field, now))?;
    parse_minor(&t, minor_exponent("USD")).ok_or_else(|| vbox("2170", "Invalid amount", field, now))
}

fn ref_value<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    v.pointer(path).and_then(Value::as_str)
}

async fn entity_post(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((realm, entity)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (mut st, ci) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = sb.inner.clock.now();
    if !entity.eq_ignore_ascii_case("billpayment") {
        return validation(
            "500",
            "Unsupported Operation",
            &format!("Writing {entity} is not simulated"),
            now,
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            "body is not JSON",
            now,
        );
    };
    let today = sb.inner.clock.today();
    let result = if v.get("Id").is_some() {
        update_bill_payment(&mut st.clients[ci], &v, now)
    } else {
        create_bill_payment(&mut st.clients[ci], &v, now, today)
    };
    match result {
        Ok(idx) => {
            let c = &st.clients[ci];
            let out = render_bill_payment(&c.qbo.bill_payments[idx], &c.qbo, &c.currency);
            sb.persist_logged(&st).await;
            Json(json!({"BillPayment": out, "time": qtime(now)})).into_response()
        }
        Err(r) => *r,
    }
}

fn update_bill_payment(
    c: &mut SimClient,
    v: &Value,
    now: DateTime<Utc>,
) -> Result<usize, Box<Response>> {
    let id = v.get("Id").and_then(Value::as_str).unwrap_or("");
    if v.get("sparse").and_then(Value::as_bool) != Some(true) {
        return Err(vbox(
            "500",
            "Unsupported Operation",
            "only sparse updates are simulated",
            now,
        ));
    }
    let idx = c
        .qbo
        .bill_payments
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| vbox("610", "Object Not Found", id, now))?;
    let p = &mut c.qbo.bill_payments[idx];
    if v.get("SyncToken").and_then(Value::as_str) != Some(p.sync_token.to_string().as_str()) {
        return Err(vbox(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and another user were working on this at the same time.",
            now,
        ));
    }
    if let Some(note) = v.get("PrivateNote").and_then(Value::as_str) {
        p.private_note = Some(note.to_owned());
    }
    p.sync_token += 1;
    p.updated = now;
    Ok(idx)
}

fn create_bill_payment(
    c: &mut SimClient,
    v: &Value,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<usize, Box<Response>> {
    let realm = &c.qbo;
    let vendor_id = ref_value(v, "/VendorRef/value")
        .ok_or_else(|| vbox("2020", "Required param missing", "VendorRef", now))?;
    if realm.vendor(vendor_id).is_none() {
        return Err(vbox(
            "2500",
            "Invalid Reference Id",
            &format!("Vendor {vendor_id}"),
            now,
        ));
    }
    let bank = match v.get("PayType").and_then(Value::as_str) {
        Some("Check") => {
            let b = ref_value(v, "/CheckPayment/BankAccountRef/value").ok_or_else(|| {
                vbox(
                    "2020",
                    "Required param missing",
                    "CheckPayment.BankAccountRef",
                    now,
                )
            })?;
            if !realm
                .accounts
                .iter()
                .any(|a| a.id == b && a.account_type == "Bank")
            {
                return Err(vbox(
                    "2500",
                    "Invalid Reference Id",
                    &format!("Account {b}"),
                    now,
                ));
            }
            b.to_owned()
        }
        Some("CreditCard") => {
            return Err(vbox(
                "2500",
                "Invalid Reference Id",
                "CreditCardPayment.CCAccountRef: no Credit Card account",
                now,
            ))
        }
        _ => {
            return Err(vbox(
                "2170",
                "Invalid Enumeration",
                "PayType must be Check or CreditCard",
                now,
            ))
        }
    };
    let total = amount(v, "TotalAmt", now)?;
    let lines = v
        .get("Line")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| vbox("2020", "Required param missing", "Line", now))?;
    let mut parsed = Vec::new();
    for line in lines {
        let amt = amount(line, "Amount", now)?;
        let links = line
            .get("LinkedTxn")
            .and_then(Value::as_array)
            .filter(|l| l.len() == 1);
        let link = links
            .and_then(|l| l.first())
            .ok_or_else(|| vbox("2020", "Required param missing", "Line.LinkedTxn", now))?;
        if link.get("TxnType").and_then(Value::as_str) != Some("Bill") {
            return Err(vbox(
                "2170",
                "Invalid Enumeration",
                "LinkedTxn.TxnType must be Bill",
                now,
            ));
        }
        let bill_id = link.get("TxnId").and_then(Value::as_str).unwrap_or("");
        let bill = realm
            .bills
            .iter()
            .find(|b| b.id == bill_id)
            .ok_or_else(|| vbox("610", "Object Not Found", &format!("Bill {bill_id}"), now))?;
        if bill.vendor_id != vendor_id {
            return Err(vbox(
                "6000",
                "A business validation error has occurred",
                "the linked bill belongs to another vendor",
                now,
            ));
        }
        if amt <= 0 || amt > bill.balance_cents {
            return Err(vbox(
                "6000",
                "A business validation error has occurred",
                "line amount exceeds the bill's open balance",
                now,
            ));
        }
        parsed.push(QboPaymentLine {
            amount_cents: amt,
            bill_id: bill_id.to_owned(),
        });
    }
    if parsed.iter().map(|l| l.amount_cents).sum::<i64>() != total {
        return Err(vbox(
            "6000",
            "A business validation error has occurred",
            "the sum of line amounts must equal TotalAmt",
            now,
        ));
    }
    let txn_date = match v.get("TxnDate").and_then(Value::as_str) {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| vbox("2170", "Invalid date", "TxnDate", now))?,
        None => today,
    };
    let realm = &mut c.qbo;
    for l in &parsed {
        if let Some(b) = realm.bills.iter_mut().find(|b| b.id == l.bill_id) {
            b.balance_cents -= l.amount_cents;
            b.sync_token += 1;
            b.updated = now;
        }
    }
    let id = realm.take_id();
    realm.bill_payments.push(QboBillPayment {
        id,
        vendor_id: vendor_id.to_owned(),
        txn_date,
        total_cents: total,
        bank_account_id: bank,
        private_note: v
            .get("PrivateNote")
            .and_then(Value::as_str)
            .map(str::to_owned),
        doc_number: v
            .get("DocNumber")
            .and_then(Value::as_str)
            .map(str::to_owned),
        lines: parsed,
        sync_token: 0,
        created: now,
        updated: now,
    });
    Ok(realm.bill_payments.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_grammar() {
        let q = parse_query("select * from bill where Balance > '0' AND VendorRef IN ('1','2') and DocNumber LIKE 'INV%' ORDERBY DueDate DESC, Id STARTPOSITION 3 MAXRESULTS 5000").unwrap();
        assert_eq!(q.entity, "Bill");
        assert_eq!(q.conds.len(), 3);
        assert_eq!(
            q.order,
            vec![("DueDate".to_owned(), true), ("Id".to_owned(), false)]
        );
        assert_eq!((q.start, q.max), (3, 1000));
        assert!(parse_query("SELECT count(*) FROM Vendor").unwrap().count);
        assert!(parse_query("SELECT * FROM Nope").is_err());
        assert!(parse_query("SELECT * FROM Bill WHERE").is_err());
        assert!(parse_query("SELEKT * FROM Bill").is_err());
        assert!(parse_query("SELECT * FROM Bill WHERE Id = 'x").is_err());
    }

    #[test]
    fn compares_numbers_dates_and_text() {
        assert_eq!(compare(&json!(1234.5), "0"), Ordering::Greater);
        assert_eq!(compare(&json!("10"), "9"), Ordering::Greater);
        assert_eq!(
            compare(
                &json!("2026-01-02T00:00:00.000-07:00"),
                "2026-01-02T07:00:00Z"
            ),
            Ordering::Equal
        );
        assert!(like("Sysco Foods", "sys%"));
        assert!(like("Sysco Foods", "%FOOD%"));
        assert!(!like("Sysco Foods", "%bar%"));
    }
}
