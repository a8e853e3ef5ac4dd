//! Read models for the console (reads only; every table here has its own
//! writer module). Every function takes the caller's firm and filters by
//! it; aggregates are computed per firm in a handful of queries (never a
//! query per client).

use super::db::from_ms;
use super::{corrupt, parse_date, parse_id as id, state_list, StoreError, StoreResult};
use crate::domain::custody::PaymentState;
use crate::domain::guardrails::{evaluate_liquidity, LiquidityInput};
use crate::domain::runway::{burn_from_window_outflows, burn_window_start, runway_days};
use crate::model::*;
use chrono::{Duration, NaiveDate};
use sqlx::{AnyPool, Row};
use std::collections::HashMap;

/// Bills due within this many days count as "due soon" on the portfolio.
pub const DUE_SOON_DAYS: i64 = 14;

fn currency(s: &str) -> StoreResult<Currency> {
    Currency::parse(s).map_err(corrupt)
}

/// `state in (...)` for payments whose money is committed but not yet out
/// of the bank (`PaymentState::is_committed_unpaid`).
fn committed_unpaid_states() -> String {
    state_list(
        crate::domain::custody::ALL_STATES
            .iter()
            .filter(|s| s.is_committed_unpaid())
            .map(|s| s.as_str()),
    )
}

/// Summaries for every client of the firm, or just `only` when given. Takes
/// a connection so an approval can read through its own transaction.
pub async fn client_summaries(
    conn: &mut sqlx::AnyConnection,
    firm: &FirmId,
    today: NaiveDate,
    only: Option<&ClientId>,
) -> StoreResult<Vec<ClientSummary>> {
    let only = only.map(|c| c.as_str().to_owned());
    let clients = sqlx::query(
        "select client_id, name, currency, buffer_days from client
         where firm_id = $1 and ($2 is null or client_id = $2) order by name",
    )
    .bind(firm.as_str())
    .bind(only.clone())
    .fetch_all(&mut *conn)
    .await?;

    let mut cash: HashMap<String, (i64, i64)> = HashMap::new();
    for r in sqlx::query(
        "select s.client_id, s.available_minor, s.as_of from cash_snapshot s
         join client c on c.client_id = s.client_id where c.firm_id = $1",
    )
    .bind(firm.as_str())
    .fetch_all(&mut *conn)
    .await?
    {
        cash.insert(
            r.try_get("client_id")?,
            (r.try_get("available_minor")?, r.try_get("as_of")?),
        );
    }

    let mut outflows: HashMap<String, i64> = HashMap::new();
    for r in sqlx::query(
        "select t.client_id, cast(sum(t.amount_minor) as bigint) as total from bank_txn t
         join client c on c.client_id = t.client_id
         where c.firm_id = $1 and t.amount_minor > 0 and t.txn_date > $2 and t.txn_date <= $3
         group by t.client_id",
    )
    .bind(firm.as_str())
    .bind(burn_window_start(today).to_string())
    .bind(today.to_string())
    .fetch_all(&mut *conn)
    .await?
    {
        outflows.insert(r.try_get("client_id")?, r.try_get("total")?);
    }

    let mut unpaid: HashMap<String, i64> = HashMap::new();
    for r in sqlx::query(&format!(
        "select client_id, cast(sum(amount_minor) as bigint) as total from payment
             where firm_id = $1 and state in ({}) group by client_id",
        committed_unpaid_states()
    ))
    .bind(firm.as_str())
    .fetch_all(&mut *conn)
    .await?
    {
        unpaid.insert(r.try_get("client_id")?, r.try_get("total")?);
    }

    let mut due: HashMap<String, (i64, i64)> = HashMap::new();
    for r in sqlx::query(
        "select b.client_id, count(*) as n, cast(sum(b.balance_minor) as bigint) as total from staged_bill b
         where b.firm_id = $1 and b.status = 'open' and b.due_date <= $2
           and not exists (select 1 from payment p where p.bill_id = b.bill_id
                          and p.state not in ('cancelled', 'failed', 'rejected'))
         group by b.client_id",
    )
    .bind(firm.as_str())
    .bind((today + Duration::days(DUE_SOON_DAYS)).to_string())
    .fetch_all(&mut *conn)
    .await?
    {
        due.insert(r.try_get("client_id")?, (r.try_get("n")?, r.try_get("total")?));
    }

    let mut out = Vec::with_capacity(clients.len());
    for c in clients {
        let cid: String = c.try_get("client_id")?;
        let cur = currency(&c.try_get::<String, _>("currency")?)?;
        let buffer_days = u32::try_from(c.try_get::<i64, _>("buffer_days")?).unwrap_or(14);
        let daily_burn =
            burn_from_window_outflows(outflows.get(&cid).copied().unwrap_or(0), cur.clone());
        let approved_unpaid = Money::new(unpaid.get(&cid).copied().unwrap_or(0), cur.clone());
        let (due_n, due_total) = due.get(&cid).copied().unwrap_or((0, 0));
        let due_soon_total = Money::new(due_total, cur.clone());
        let snap = cash.get(&cid).copied();
        let available = snap.map(|(a, _)| Money::new(a, cur.clone()));
        let status = match &available {
            None => GuardrailStatus::NoData,
            Some(avail) => {
                let check = |selected: &Money| {
                    evaluate_liquidity(&LiquidityInput {
                        available: avail.clone(),
                        approved_unpaid: approved_unpaid.clone(),
                        selected: selected.clone(),
                        daily_burn: daily_burn.clone(),
                        buffer_days,
                    })
                    .map(|v| v.pass)
                    .map_err(corrupt)
                };
                if !check(&Money::zero(cur.clone()))? {
                    GuardrailStatus::Breach
                } else if !check(&due_soon_total)? {
                    GuardrailStatus::AtRisk
                } else {
                    GuardrailStatus::Ok
                }
            }
        };
        let runway = available
            .as_ref()
            .and_then(|a| runway_days(a.minor - approved_unpaid.minor, daily_burn.minor));
        out.push(ClientSummary {
            client_id: id(&cid)?,
            name: c.try_get("name")?,
            cash: CashPosition {
                available,
                as_of: snap.map(|(_, t)| from_ms(t)),
                daily_burn,
                approved_unpaid,
                buffer_days,
            },
            runway_days: runway,
            due_soon_count: u32::try_from(due_n).unwrap_or(0),
            due_soon_total,
            status,
        });
    }
    Ok(out)
}

/// Open bills of a client that have no payment yet, soonest due first.
pub async fn open_bills(
    pool: &AnyPool,
    firm: &FirmId,
    client: &ClientId,
    today: NaiveDate,
) -> StoreResult<Vec<BillView>> {
    let rows = sqlx::query(
        "select b.bill_id, b.vendor_name, b.doc_number, b.balance_minor, b.currency, b.due_date
         from staged_bill b
         where b.firm_id = $1 and b.client_id = $2 and b.status = 'open'
           and not exists (select 1 from payment p where p.bill_id = b.bill_id
                          and p.state not in ('cancelled', 'failed', 'rejected'))
         order by b.due_date, b.bill_id",
    )
    .bind(firm.as_str())
    .bind(client.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let due = parse_date(&r.try_get::<String, _>("due_date")?)?;
            Ok(BillView {
                bill_id: id(&r.try_get::<String, _>("bill_id")?)?,
                vendor_name: r.try_get("vendor_name")?,
                doc_number: r.try_get("doc_number")?,
                amount: Money::new(
                    r.try_get("balance_minor")?,
                    currency(&r.try_get::<String, _>("currency")?)?,
                ),
                due_date: due,
                overdue: due < today,
            })
        })
        .collect()
}

const PAYMENT_SELECT: &str =
    "select p.payment_id, p.client_id, c.name as client_name, b.vendor_name,
        b.doc_number, p.amount_minor, p.currency, p.state, p.flag_reason,
        p.payment_arrival_date, p.created_at, p.ramp_bill_id, p.qbo_bill_payment_id, p.plaid_txn_id
    from payment p
    join client c on c.client_id = p.client_id
    join staged_bill b on b.bill_id = p.bill_id";

fn payment_summary(r: &sqlx::any::AnyRow) -> StoreResult<PaymentSummary> {
    let state: String = r.try_get("state")?;
    Ok(PaymentSummary {
        payment_id: id(&r.try_get::<String, _>("payment_id")?)?,
        client_id: id(&r.try_get::<String, _>("client_id")?)?,
        client_name: r.try_get("client_name")?,
        vendor_name: r.try_get("vendor_name")?,
        doc_number: r.try_get("doc_number")?,
        amount: Money::new(
            r.try_get("amount_minor")?,
            currency(&r.try_get::<String, _>("currency")?)?,
        ),
        state: PaymentState::parse(&state).ok_or_else(|| corrupt(&state))?,
        flag_reason: r.try_get("flag_reason")?,
        payment_arrival_date: parse_date(&r.try_get::<String, _>("payment_arrival_date")?)?,
        created_at: from_ms(r.try_get("created_at")?),
    })
}

pub async fn client_payments(
    pool: &AnyPool,
    firm: &FirmId,
    client: &ClientId,
) -> StoreResult<Vec<PaymentSummary>> {
    let sql = format!(
        "{PAYMENT_SELECT} where p.firm_id = $1 and p.client_id = $2 order by p.created_at desc, p.payment_id"
    );
    let rows = sqlx::query(&sql)
        .bind(firm.as_str())
        .bind(client.as_str())
        .fetch_all(pool)
        .await?;
    rows.iter().map(payment_summary).collect()
}

pub async fn payment_detail(
    pool: &AnyPool,
    firm: &FirmId,
    payment: &PaymentId,
) -> StoreResult<PaymentDetail> {
    let sql = format!("{PAYMENT_SELECT} where p.firm_id = $1 and p.payment_id = $2");
    let row = sqlx::query(&sql)
        .bind(firm.as_str())
        .bind(payment.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound)?;
    let summary = payment_summary(&row)?;
    let events = sqlx::query(
        "select state, owner, actor, evidence, at from custody_event where payment_id = $1",
    )
    .bind(payment.as_str())
    .fetch_all(pool)
    .await?;
    let mut steps = events
        .iter()
        .map(|e| {
            let st: String = e.try_get("state")?;
            let owner: String = e.try_get("owner")?;
            Ok(CustodyStep {
                state: PaymentState::parse(&st).ok_or_else(|| corrupt(&st))?,
                owner: CustodyOwner::parse(&owner).ok_or_else(|| corrupt(&owner))?,
                actor: e.try_get("actor")?,
                evidence: e.try_get("evidence")?,
                at: from_ms(e.try_get("at")?),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // Chain order, not arrival order: evidence can arrive out of order.
    let order = |s: PaymentState| {
        crate::domain::custody::CHAIN
            .iter()
            .position(|c| *c == s)
            .unwrap_or(usize::MAX)
    };
    steps.sort_by_key(|s| (order(s.state), s.at));
    Ok(PaymentDetail {
        summary,
        steps,
        ramp_bill_id: row.try_get("ramp_bill_id")?,
        qbo_bill_payment_id: row.try_get("qbo_bill_payment_id")?,
        plaid_txn_id: row.try_get("plaid_txn_id")?,
    })
}

pub async fn open_hygiene(pool: &AnyPool, firm: &FirmId) -> StoreResult<Vec<HygieneItemView>> {
    let rows = sqlx::query(
        "select h.hygiene_id, c.name as client_name, h.payment_id, h.severity, h.reason_code,
                h.detail, h.created_at
         from hygiene_item h left join client c on c.client_id = h.client_id
         where h.firm_id = $1 and h.status = 'open' order by h.created_at desc",
    )
    .bind(firm.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let pid: Option<String> = r.try_get("payment_id")?;
            Ok(HygieneItemView {
                hygiene_id: id(&r.try_get::<String, _>("hygiene_id")?)?,
                client_name: r.try_get("client_name")?,
                payment_id: pid.map(|p| id(&p)).transpose()?,
                severity: {
                    let s: String = r.try_get("severity")?;
                    Severity::parse(&s).ok_or_else(|| corrupt(&s))?
                },
                reason_code: {
                    let c: String = r.try_get("reason_code")?;
                    ReasonCode::parse(&c).ok_or_else(|| corrupt(&c))?
                },
                detail: r.try_get("detail")?,
                created_at: from_ms(r.try_get("created_at")?),
            })
        })
        .collect()
}
