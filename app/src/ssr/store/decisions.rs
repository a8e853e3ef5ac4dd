//! Read models for deciding across the portfolio (issue #16): the
//! approvals table, the waiting list, batch answers. Reads only; every
//! table here has its own writer module.

use super::read_models::dead_states;
use super::{corrupt, parse_date, parse_id as id, StoreResult};
use crate::domain::rules::{self, Candidate, OtherBill, Policy};
use crate::model::*;
use chrono::NaiveDate;
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The clients of `bills` (only the firm's, only open ones), by client
/// name: `(client, name, its bills)`.
pub async fn bills_by_client(
    conn: &mut AnyConnection,
    firm: &FirmId,
    bills: &[BillId],
) -> StoreResult<Vec<(ClientId, String, Vec<BillId>)>> {
    let mut out: Vec<(ClientId, String, Vec<BillId>)> = Vec::new();
    // In chunks: a statement's parameters are limited (SQLite 32,766).
    for chunk in bills.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "select b.bill_id, b.client_id, c.name from staged_bill b
             join client c on c.client_id = b.client_id
             where b.firm_id = $1 and b.status = 'open' and b.bill_id in ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, String, String)>(&sql).bind(firm.as_str());
        for b in chunk {
            q = q.bind(b.as_str());
        }
        for (bill, client, name) in q.fetch_all(&mut *conn).await? {
            let client: ClientId = id(&client)?;
            match out.iter_mut().find(|(c, _, _)| *c == client) {
                Some((_, _, v)) => v.push(id(&bill)?),
                None => out.push((client, name, vec![id(&bill)?])),
            }
        }
    }
    out.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    for (_, _, v) in &mut out {
        v.sort();
    }
    Ok(out)
}

/// The stored per-client answers of the user's batch, by client name.
pub async fn batch_answers(
    conn: &mut AnyConnection,
    firm: &FirmId,
    user: &UserId,
    batch_key: &str,
) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select a.answer from approval_batch_client a join client c on c.client_id = a.client_id
         where a.firm_id = $1 and a.user_id = $2 and a.batch_key = $3 order by c.name",
    )
    .bind(firm.as_str())
    .bind(user.as_str())
    .bind(batch_key)
    .fetch_all(conn)
    .await?)
}

/// The approvals table's filters, checked at the edge.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub client: Option<ClientId>,
    /// Part of the vendor's name, any case.
    pub vendor: Option<String>,
    /// Due on or before today + this many days (overdue included).
    pub due_within_days: Option<i64>,
    pub min_minor: Option<i64>,
    pub max_minor: Option<i64>,
    /// `overdue` or `second_approval_required`.
    pub rule: Option<String>,
}

/// Sort keys of the approvals table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Due,
    Amount,
    Client,
    Vendor,
}

impl Sort {
    pub fn parse(s: &str) -> Option<Sort> {
        match s {
            "due" => Some(Sort::Due),
            "amount" => Some(Sort::Amount),
            "client" => Some(Sort::Client),
            "vendor" => Some(Sort::Vendor),
            _ => None,
        }
    }

    fn sql(self, desc: bool) -> String {
        let d = if desc { " desc" } else { "" };
        match self {
            Sort::Due => format!("b.due_date{d}, b.balance_minor{d}, b.bill_id"),
            Sort::Amount => format!("b.balance_minor{d}, b.due_date, b.bill_id"),
            Sort::Client => format!("c.name{d}, b.due_date, b.bill_id"),
            Sort::Vendor => format!("lower(b.vendor_name){d}, b.due_date, b.bill_id"),
        }
    }
}

/// Which page of the approvals table, in which order.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub sort: Sort,
    pub desc: bool,
    /// From 1.
    pub page: u32,
    pub per_page: u32,
}

/// A bill's per-client context for the rules: its policy, other bills and
/// known vendors.
struct ClientRules {
    policy: Policy,
    currency: Currency,
    /// No cash: the per-bill rules do not look at it.
    no_cash: rules::CashFacts,
    bills: Arc<ClientBills>,
}

/// What the rules read of one client's bills, kept between page reads for
/// one revision of the client ([`BillsCache`]).
#[derive(Default)]
pub struct ClientBills {
    /// The client's bills by vendor: the duplicate rule compares a bill
    /// only with its own vendor's, so each bill is judged against a
    /// handful instead of every bill of the client.
    by_vendor: HashMap<String, Vec<OtherBill>>,
    known: HashSet<String>,
    /// Open bills with no live payment: what can be decided now.
    open: Vec<rules::BillFacts>,
    /// `open` as suggested-batch candidates (whether a per-bill rule
    /// refuses each), worked out once per day and policy version.
    candidates: Mutex<Option<CandidatesMemo>>,
}

struct CandidatesMemo {
    today: NaiveDate,
    policy_version: i64,
    currency: String,
    candidates: Arc<Vec<Candidate>>,
}

/// Each client's [`ClientBills`], valid for one `client_revision`.
pub type BillsCache = super::revision_cache::RevisionCache<ClientBills>;

struct OpenBill {
    bill_id: String,
    client_id: String,
    vendor_id: String,
    vendor_name: String,
    doc_number: Option<String>,
    amount_minor: i64,
    currency: String,
    txn_date: NaiveDate,
    due_date: NaiveDate,
}

impl OpenBill {
    fn from_row(r: &sqlx::any::AnyRow) -> StoreResult<Self> {
        Ok(OpenBill {
            bill_id: r.try_get("bill_id")?,
            client_id: r.try_get("client_id")?,
            vendor_id: r.try_get("qbo_vendor_id")?,
            vendor_name: r.try_get("vendor_name")?,
            doc_number: r.try_get("doc_number")?,
            amount_minor: r.try_get("balance_minor")?,
            currency: r.try_get("currency")?,
            txn_date: parse_date(&r.try_get::<String, _>("txn_date")?)?,
            due_date: parse_date(&r.try_get::<String, _>("due_date")?)?,
        })
    }

    fn facts(&self) -> rules::BillFacts {
        rules::BillFacts {
            bill_id: self.bill_id.clone(),
            vendor_id: self.vendor_id.clone(),
            vendor_name: self.vendor_name.clone(),
            doc_number: self.doc_number.clone(),
            amount_minor: self.amount_minor,
            currency: self.currency.clone(),
            txn_date: self.txn_date,
            due_date: self.due_date,
        }
    }
}

const OPEN_BILL_COLUMNS: &str = "b.bill_id, b.client_id, b.qbo_vendor_id, b.vendor_name,
    b.doc_number, b.balance_minor, b.currency, b.txn_date, b.due_date";

/// The rules' context of each of `clients`: their policies, read every
/// time, and their bills, read only for the clients whose revision moved
/// since `cache` last saw them (all of them on a cold cache).
async fn client_rules(
    conn: &mut AnyConnection,
    firm: &FirmId,
    clients: &[String],
    cache: &BillsCache,
) -> StoreResult<HashMap<String, ClientRules>> {
    let mut out = HashMap::new();
    if clients.is_empty() {
        return Ok(out);
    }
    let list: Vec<String> = (0..clients.len()).map(|i| format!("${}", i + 2)).collect();
    let list = list.join(", ");
    // The revision is read before the bills: a value built from them is
    // then never older than the revision it is kept under.
    let sql = format!(
        "select c.client_id, c.currency, c.policy_version, c.buffer_days, c.cash_max_age_secs,
                c.bank_history_max_age_secs, c.dual_control_threshold_minor,
                c.duplicate_window_days, c.new_vendor_second_approver,
                coalesce(r.rev, 0) as rev
         from client c left join client_revision r on r.client_id = c.client_id
         where c.firm_id = $1 and c.client_id in ({list})"
    );
    let mut q = sqlx::query(&sql).bind(firm.as_str());
    for c in clients {
        q = q.bind(c);
    }
    let mut stale: Vec<(String, i64)> = Vec::new();
    for r in q.fetch_all(&mut *conn).await? {
        let small = |v: i64| u32::try_from(v).map_err(|_| corrupt(format!("policy value {v}")));
        let currency = Currency::parse(&r.try_get::<String, _>("currency")?).map_err(corrupt)?;
        let client_id: String = r.try_get("client_id")?;
        let rev: i64 = r.try_get("rev")?;
        let bills = match cache.get(firm.as_str(), &client_id, rev) {
            Some(b) => b,
            None => {
                stale.push((client_id.clone(), rev));
                Arc::default()
            }
        };
        out.insert(
            client_id,
            ClientRules {
                policy: Policy {
                    version: r.try_get("policy_version")?,
                    buffer_days: small(r.try_get("buffer_days")?)?,
                    cash_max_age_secs: r.try_get("cash_max_age_secs")?,
                    bank_history_max_age_secs: r.try_get("bank_history_max_age_secs")?,
                    dual_control_threshold_minor: r.try_get("dual_control_threshold_minor")?,
                    duplicate_window_days: small(r.try_get("duplicate_window_days")?)?,
                    new_vendor_second_approver: r
                        .try_get::<i64, _>("new_vendor_second_approver")?
                        != 0,
                },
                no_cash: rules::CashFacts {
                    available: Money::zero(currency.clone()),
                    approved_unpaid: Money::zero(currency.clone()),
                    daily_burn: Money::zero(currency.clone()),
                },
                currency,
                bills,
            },
        );
    }
    if stale.is_empty() {
        return Ok(out);
    }
    let names: Vec<String> = stale.iter().map(|(c, _)| c.clone()).collect();
    let mut fresh = client_bills(conn, firm, &names).await?;
    for (client_id, rev) in stale {
        let bills = Arc::new(fresh.remove(&client_id).unwrap_or_default());
        cache.put(firm.as_str(), &client_id, rev, Arc::clone(&bills));
        if let Some(cr) = out.get_mut(&client_id) {
            cr.bills = bills;
        }
    }
    Ok(out)
}

/// The bills of `clients` as the rules read them (two queries in all).
async fn client_bills(
    conn: &mut AnyConnection,
    firm: &FirmId,
    clients: &[String],
) -> StoreResult<HashMap<String, ClientBills>> {
    let mut out: HashMap<String, ClientBills> = clients
        .iter()
        .map(|c| (c.clone(), ClientBills::default()))
        .collect();
    let list: Vec<String> = (0..clients.len()).map(|i| format!("${}", i + 2)).collect();
    let list = list.join(", ");
    // The bills with a live payment, read apart (a handful) rather than
    // by a subquery per bill.
    let sql = format!(
        "select p.bill_id from payment p
         where p.firm_id = $1 and p.client_id in ({list}) and p.state not in ({})",
        dead_states()
    );
    let mut q = sqlx::query_scalar::<_, String>(&sql).bind(firm.as_str());
    for c in clients {
        q = q.bind(c);
    }
    let live: HashSet<String> = q.fetch_all(&mut *conn).await?.into_iter().collect();
    // Every bill of these clients, once: the duplicate rule's history,
    // the vendors already paid (a closed bill, or one with a live payment)
    // and the bills open to decide: ten thousand rows for a hundred
    // clients (see `db::fetch_many`).
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        i64,
        i64,
        String,
        String,
        String,
        String,
    );
    let mut binds: Vec<&str> = vec![firm.as_str()];
    binds.extend(clients.iter().map(String::as_str));
    let rows: Vec<Row> = super::db::fetch_many(
        conn,
        "b.client_id, b.bill_id, b.qbo_vendor_id, b.vendor_name, b.doc_number,
         b.amount_minor, b.balance_minor, b.currency, b.txn_date, b.due_date, b.status",
        &format!("from staged_bill b where b.firm_id = $1 and b.client_id in ({list})"),
        &binds,
    )
    .await?;
    for (
        client_id,
        bill_id,
        vendor_id,
        vendor_name,
        doc_number,
        amount_minor,
        balance_minor,
        currency,
        txn_date,
        due_date,
        status,
    ) in rows
    {
        let Some(cr) = out.get_mut(&client_id) else {
            continue;
        };
        let txn_date = parse_date(&txn_date)?;
        let live = live.contains(&bill_id);
        if status == "closed" || live {
            cr.known.insert(vendor_id.clone());
        }
        if status == "open" && !live {
            cr.open.push(rules::BillFacts {
                bill_id: bill_id.clone(),
                vendor_id: vendor_id.clone(),
                vendor_name,
                doc_number: doc_number.clone(),
                amount_minor: balance_minor,
                currency,
                txn_date,
                due_date: parse_date(&due_date)?,
            });
        }
        cr.by_vendor
            .entry(vendor_id.clone())
            .or_default()
            .push(OtherBill {
                bill_id,
                vendor_id,
                doc_number,
                amount_minor,
                txn_date,
            });
    }
    Ok(out)
}

/// One open bill judged alone in its client's context (the buffer is the
/// selection's, judged in the browser and again by the server).
fn judge_input<'a>(
    cr: &'a ClientRules,
    bill: &'a rules::BillFacts,
    today: NaiveDate,
) -> rules::DecideInput<'a> {
    rules::DecideInput {
        policy: &cr.policy,
        bills: std::slice::from_ref(bill),
        others: cr
            .bills
            .by_vendor
            .get(&bill.vendor_id)
            .map_or(&[][..], Vec::as_slice),
        known_vendors: &cr.bills.known,
        bank_currency: &cr.currency,
        cash: &cr.no_cash,
        blockers: vec![],
        today,
        override_requested: false,
    }
}

/// What the per-bill rules say of an open bill.
fn judge(cr: &ClientRules, bill: &rules::BillFacts, today: NaiveDate) -> Vec<rules::Finding> {
    rules::bill_findings(&judge_input(cr, bill, today), bill)
}

/// [`rules::refused_alone`] in the client's context: a bill a per-bill
/// rule refuses is never suggested.
fn refused_alone(cr: &ClientRules, bill: &rules::BillFacts, today: NaiveDate) -> bool {
    rules::refused_alone(&judge_input(cr, bill, today), bill)
}

fn is_blocked(cr: &ClientRules, findings: &[rules::Finding]) -> bool {
    findings.iter().any(|f| {
        matches!(
            f.rule.effect(&cr.policy),
            rules::Effect::Refused | rules::Effect::RefusedOverridable
        )
    })
}

/// One page of the approvals table with the rules' verdicts, before the
/// suggested batch is marked ([`ApprovalsTable::suggest`]): that needs the
/// clients' cash summaries, which the caller may read meanwhile on another
/// connection.
pub struct ApprovalsTable {
    rows: Vec<ApprovalRow>,
    total: u64,
    ctx: HashMap<String, ClientRules>,
}

impl ApprovalsTable {
    /// The rows, each marked when its client's suggested batch takes it,
    /// and how many rows the filters match in all.
    pub fn suggest(
        mut self,
        today: NaiveDate,
        summaries: &[ClientSummary],
    ) -> (Vec<ApprovalRow>, u64) {
        let suggested = suggested_for(today, &self.ctx, summaries);
        for r in &mut self.rows {
            r.suggested = suggested.contains(r.bill_id.as_str());
        }
        (self.rows, self.total)
    }
}

/// One page of the approvals table: every open bill without a live
/// payment across the firm, filtered, sorted and paginated in SQL; the
/// rules computed for the clients on the page.
pub async fn approvals_page(
    conn: &mut AnyConnection,
    firm: &FirmId,
    today: NaiveDate,
    filters: &Filters,
    paging: Paging,
    cache: &BillsCache,
) -> StoreResult<ApprovalsTable> {
    let Paging {
        sort,
        desc,
        page,
        per_page,
    } = paging;
    let mut cond = format!(
        "b.firm_id = $1 and b.status = 'open'
         and not exists (select 1 from payment p where p.bill_id = b.bill_id
                         and p.state not in ({}))",
        dead_states()
    );
    let mut binds: Vec<String> = vec![firm.as_str().to_owned()];
    let mut int_binds: Vec<(usize, i64)> = vec![];
    let mut next = 2;
    if let Some(c) = &filters.client {
        cond.push_str(&format!(" and b.client_id = ${next}"));
        binds.push(c.as_str().to_owned());
        next += 1;
    }
    if let Some(v) = &filters.vendor {
        cond.push_str(&format!(" and lower(b.vendor_name) like ${next}"));
        let escaped = v.to_lowercase().replace(['%', '_'], "");
        binds.push(format!("%{escaped}%"));
        next += 1;
    }
    if let Some(days) = filters.due_within_days {
        cond.push_str(&format!(" and b.due_date <= ${next}"));
        binds.push((today + chrono::Duration::days(days)).to_string());
        next += 1;
    }
    match filters.rule.as_deref() {
        Some("overdue") => {
            cond.push_str(&format!(" and b.due_date < ${next}"));
            binds.push(today.to_string());
            next += 1;
        }
        Some("second_approval_required") => {
            cond.push_str(" and b.balance_minor >= c.dual_control_threshold_minor");
        }
        _ => {}
    }
    // Integer binds after the text ones keep the placeholder numbers simple.
    if let Some(min) = filters.min_minor {
        cond.push_str(&format!(" and b.balance_minor >= ${next}"));
        int_binds.push((next, min));
        next += 1;
    }
    if let Some(max) = filters.max_minor {
        cond.push_str(&format!(" and b.balance_minor <= ${next}"));
        int_binds.push((next, max));
        next += 1;
    }
    let count_sql = format!(
        "select count(*) from staged_bill b join client c on c.client_id = b.client_id where {cond}"
    );
    let mut q = sqlx::query_scalar::<_, i64>(&count_sql);
    for b in &binds {
        q = q.bind(b.clone());
    }
    for (_, v) in &int_binds {
        q = q.bind(*v);
    }
    let total = u64::try_from(q.fetch_one(&mut *conn).await?).unwrap_or(0);

    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    let sql = format!(
        "select {OPEN_BILL_COLUMNS}, c.name as client_name
         from staged_bill b join client c on c.client_id = b.client_id
         where {cond} order by {} limit ${next} offset ${}",
        sort.sql(desc),
        next + 1
    );
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b.clone());
    }
    for (_, v) in &int_binds {
        q = q.bind(*v);
    }
    let rows = q
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
    let mut bills = Vec::with_capacity(rows.len());
    let mut names: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let b = OpenBill::from_row(r)?;
        names.insert(b.client_id.clone(), r.try_get("client_name")?);
        bills.push(b);
    }
    let mut clients: Vec<String> = names.keys().cloned().collect();
    clients.sort();
    let ctx = client_rules(conn, firm, &clients, cache).await?;

    let mut out = Vec::with_capacity(bills.len());
    for b in bills {
        let Some(cr) = ctx.get(&b.client_id) else {
            continue;
        };
        let findings = judge(cr, &b.facts(), today);
        out.push(ApprovalRow {
            bill_id: id(&b.bill_id)?,
            client_id: id(&b.client_id)?,
            client_name: names.get(&b.client_id).cloned().unwrap_or_default(),
            vendor_name: b.vendor_name.clone(),
            doc_number: b.doc_number.clone(),
            amount: Money::new(
                b.amount_minor,
                Currency::parse(&b.currency).map_err(corrupt)?,
            ),
            due_date: b.due_date,
            overdue: b.due_date < today,
            rules: findings.iter().map(|f| f.rule.code().to_owned()).collect(),
            rule_messages: findings.iter().map(|f| f.message.clone()).collect(),
            blocked: is_blocked(cr, &findings),
            suggested: false,
        });
    }
    Ok(ApprovalsTable {
        rows: out,
        total,
        ctx,
    })
}

/// Every client's suggested batch (bill ids), for the clients in `ctx`:
/// their open bills ranked and fitted inside the buffer's headroom
/// (`rules::suggest_batch`). A client without usable cash gets none.
fn suggested_for(
    today: NaiveDate,
    ctx: &HashMap<String, ClientRules>,
    summaries: &[ClientSummary],
) -> HashSet<String> {
    let mut out = HashSet::new();
    for s in summaries {
        let Some(cr) = ctx.get(s.client_id.as_str()) else {
            continue;
        };
        let Some(headroom) = headroom(s) else {
            continue;
        };
        out.extend(rules::suggest_batch(&candidates(cr, today), headroom));
    }
    out
}

/// The client's open bills as suggested-batch candidates, from its memo
/// when the day, the policy and the currency are the ones it was made for.
fn candidates(cr: &ClientRules, today: NaiveDate) -> Arc<Vec<Candidate>> {
    let mut memo = cr
        .bills
        .candidates
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(m) = memo.as_ref() {
        if m.today == today
            && m.policy_version == cr.policy.version
            && m.currency == cr.currency.as_str()
        {
            return Arc::clone(&m.candidates);
        }
    }
    let candidates: Arc<Vec<Candidate>> = Arc::new(
        cr.bills
            .open
            .iter()
            .map(|b| Candidate {
                bill_id: b.bill_id.clone(),
                amount_minor: b.amount_minor,
                due_date: b.due_date,
                blocked: refused_alone(cr, b, today),
            })
            .collect(),
    );
    *memo = Some(CandidatesMemo {
        today,
        policy_version: cr.policy.version,
        currency: cr.currency.as_str().to_owned(),
        candidates: Arc::clone(&candidates),
    });
    candidates
}

/// `cash after − required buffer` with nothing selected, when the client's
/// cash can be judged at all.
pub fn headroom(s: &ClientSummary) -> Option<i64> {
    if !matches!(
        s.status,
        GuardrailStatus::Ok | GuardrailStatus::AtRisk | GuardrailStatus::Breach
    ) {
        return None;
    }
    let available = s.cash.available.as_ref()?;
    let required = s
        .cash
        .daily_burn
        .minor
        .checked_mul(i64::from(s.cash.buffer_days))?;
    available
        .minor
        .checked_sub(s.cash.approved_unpaid.minor)?
        .checked_sub(required)
}

/// The firm's payments waiting for a second approver, oldest first, with
/// who approved them first and why they wait.
pub async fn waiting(
    conn: &mut AnyConnection,
    firm: &FirmId,
    me: &UserId,
) -> StoreResult<Vec<WaitingPayment>> {
    let rows = sqlx::query(
        "select p.payment_id, p.client_id, c.name as client_name, b.vendor_name, b.doc_number,
                p.amount_minor, p.currency, a.user_id, u.email, a.at, a.rules
         from payment p
         join client c on c.client_id = p.client_id
         join staged_bill b on b.bill_id = p.bill_id
         join approval a on a.payment_id = p.payment_id and a.step = 'first'
         join app_user u on u.user_id = a.user_id
         where p.firm_id = $1 and p.state = 'awaiting_second_approval'
         order by a.at, p.payment_id",
    )
    .bind(firm.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let rules: serde_json::Value =
                serde_json::from_str(&r.try_get::<String, _>("rules")?).map_err(corrupt)?;
            let why = rules
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|f| f["effect"] == "WaitsForSecond")
                        .filter_map(|f| f["message"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            Ok(WaitingPayment {
                payment_id: id(&r.try_get::<String, _>("payment_id")?)?,
                client_id: id(&r.try_get::<String, _>("client_id")?)?,
                client_name: r.try_get("client_name")?,
                vendor_name: r.try_get("vendor_name")?,
                doc_number: r.try_get("doc_number")?,
                amount: Money::new(
                    r.try_get("amount_minor")?,
                    Currency::parse(&r.try_get::<String, _>("currency")?).map_err(corrupt)?,
                ),
                mine: r.try_get::<String, _>("user_id")? == me.as_str(),
                first_approver: r.try_get("email")?,
                first_approved_at: super::from_ms(r.try_get("at")?),
                why,
            })
        })
        .collect()
}

/// A payment's approvals for its page.
pub async fn approvals_of(
    conn: &mut AnyConnection,
    payment_id: &str,
) -> StoreResult<Vec<ApprovalView>> {
    Ok(super::approvals::of_payment(conn, payment_id)
        .await?
        .into_iter()
        .map(|a| ApprovalView {
            step: a.step,
            approver: a.email,
            at: a.at,
            policy_version: a.policy_version,
            override_reason: a.override_reason,
        })
        .collect())
}

/// How many of the firm's payments wait for a second approver.
pub async fn waiting_count(conn: &mut AnyConnection, firm: &FirmId) -> StoreResult<u32> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from payment where firm_id = $1 and state = 'awaiting_second_approval'",
    )
    .bind(firm.as_str())
    .fetch_one(conn)
    .await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Every client's suggested batch across the firm (bill ids): what the
/// approvals page offers with one key, for all clients at once.
pub async fn suggested_batches(
    conn: &mut AnyConnection,
    firm: &FirmId,
    today: NaiveDate,
    summaries: &[ClientSummary],
    cache: &BillsCache,
) -> StoreResult<HashSet<String>> {
    let clients: Vec<String> = summaries
        .iter()
        .map(|s| s.client_id.as_str().to_owned())
        .collect();
    let ctx = client_rules(conn, firm, &clients, cache).await?;
    Ok(suggested_for(today, &ctx, summaries))
}
