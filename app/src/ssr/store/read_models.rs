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
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sqlx::{AnyPool, Row};
use std::collections::HashMap;

/// Bills due within this many days count as "due soon" on the portfolio.
pub const DUE_SOON_DAYS: i64 = 14;

fn currency(s: &str) -> StoreResult<Currency> {
    Currency::parse(s).map_err(corrupt)
}

/// `state in (...)` for payments that may hold committed cash
/// (`PaymentState::may_hold_committed_cash`).
fn committed_states() -> String {
    state_list(
        crate::domain::custody::ALL_STATES
            .iter()
            .filter(|s| s.may_hold_committed_cash())
            .map(|s| s.as_str()),
    )
}

/// `state in (...)` for payments that are over without moving money: a bill
/// whose only payments are these can be approved again.
pub(super) fn dead_states() -> String {
    state_list(
        crate::domain::custody::ALL_STATES
            .iter()
            .filter(|s| s.is_dead())
            .map(|s| s.as_str()),
    )
}

/// ` and <column> = $n` when the summaries are of one client: each of
/// their firm-wide aggregates then reads that client's rows alone (an
/// approval reads its client's summary inside its lock).
fn of_client(column: &str, n: usize, only: Option<&str>) -> String {
    only.map(|_| format!(" and {column} = ${n}"))
        .unwrap_or_default()
}

/// Binds the one client of [`of_client`], last.
fn bind_only<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    only: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    match only {
        Some(c) => q.bind(c),
        None => q,
    }
}

/// Committed cash per client: payments that may hold cash whose bank debit
/// is not in the held balance — no debit matched yet (or its evidence was
/// removed), or the balance was read before RowCol first saw the debit (in
/// its pending or its posted form). Checked: a sum that overflows is
/// an error, never a wrapped number.
async fn committed_by_client(
    conn: &mut sqlx::AnyConnection,
    firm: &FirmId,
    only: Option<&str>,
) -> StoreResult<HashMap<String, i64>> {
    let rows = bind_only(
        sqlx::query(&format!(
            "select p.client_id, p.amount_minor from payment p
         left join cash_snapshot s on s.client_id = p.client_id
         where p.firm_id = $1 and p.state in ({}){}
           and not exists (
             select 1 from bank_txn t
             where t.client_id = p.client_id and t.txn_id = p.plaid_txn_id
               and t.removed_at is null and s.as_of is not null
               and (coalesce(t.seen_at, 0) <= s.as_of
                    -- a posted debit whose pending form the balance already held
                    or exists (select 1 from bank_txn tp
                               where tp.client_id = t.client_id
                                 and tp.txn_id = t.pending_transaction_id
                                 and coalesce(tp.seen_at, 0) <= s.as_of)))",
            committed_states(),
            of_client("p.client_id", 2, only)
        ))
        .bind(firm.as_str()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out: HashMap<String, i64> = HashMap::new();
    for r in rows {
        let total = out.entry(r.try_get("client_id")?).or_insert(0);
        *total = total
            .checked_add(r.try_get("amount_minor")?)
            .ok_or_else(|| corrupt("committed cash overflows"))?;
    }
    Ok(out)
}

/// Summaries for every client of the firm, or just `only` when given. Takes
/// a connection so an approval can read through its own transaction. `now`
/// judges the freshness of each source against the client's policy.
pub async fn client_summaries(
    conn: &mut sqlx::AnyConnection,
    firm: &FirmId,
    now: DateTime<Utc>,
    today: NaiveDate,
    only: Option<&ClientId>,
) -> StoreResult<Vec<ClientSummary>> {
    let only = only.map(|c| c.as_str().to_owned());
    let clients = sqlx::query(
        "select c.client_id, c.name, c.currency, c.buffer_days, c.cash_max_age_secs,
                c.bank_history_max_age_secs,
                (select r.synced_at from rail_connection r
                  where r.client_id = c.client_id and r.rail = 'plaid') as history_as_of,
                (select r.synced_at from rail_connection r
                  where r.client_id = c.client_id and r.rail = 'qbo') as bills_as_of
         from client c
         where c.firm_id = $1 and ($2 is null or c.client_id = $2) order by c.name",
    )
    .bind(firm.as_str())
    .bind(only.clone())
    .fetch_all(&mut *conn)
    .await?;

    let PerClient {
        cash,
        outflows,
        committed,
        health,
        due,
        waiting,
        hygiene_open,
    } = per_client(&mut *conn, firm, today, only.as_deref()).await?;

    let mut out = Vec::with_capacity(clients.len());
    for c in clients {
        let cid: String = c.try_get("client_id")?;
        let cur = currency(&c.try_get::<String, _>("currency")?)?;
        let buffer_days = u32::try_from(c.try_get::<i64, _>("buffer_days")?).unwrap_or(14);
        let balance_max_age_secs: i64 = c.try_get("cash_max_age_secs")?;
        let bank_history_max_age_secs: i64 = c.try_get("bank_history_max_age_secs")?;
        let history_as_of = c.try_get::<Option<i64>, _>("history_as_of")?.map(from_ms);
        let bills_as_of = c.try_get::<Option<i64>, _>("bills_as_of")?.map(from_ms);
        let daily_burn =
            burn_from_window_outflows(outflows.get(&cid).copied().unwrap_or(0), cur.clone());
        let approved_unpaid = Money::new(committed.get(&cid).copied().unwrap_or(0), cur.clone());
        let (due_n, due_total) = due.get(&cid).copied().unwrap_or((0, 0));
        let due_soon_total = Money::new(due_total, cur.clone());
        let snap = cash.get(&cid).copied();
        let available = snap.map(|(a, _)| Money::new(a, cur.clone()));
        let cash_position = CashPosition {
            available: available.clone(),
            as_of: snap.map(|(_, t)| from_ms(t)),
            daily_burn: daily_burn.clone(),
            approved_unpaid: approved_unpaid.clone(),
            buffer_days,
            bank_history_as_of: history_as_of,
            bills_as_of,
            balance_max_age_secs,
            bank_history_max_age_secs,
        };
        let connection_issue = connection_issue(health.get(&cid).map(Vec::as_slice).unwrap_or(&[]));
        let status = guardrail_status(
            &cash_position,
            connection_issue.is_some(),
            &due_soon_total,
            now,
        )?;
        let runway = available.as_ref().and_then(|a| {
            a.minor
                .checked_sub(approved_unpaid.minor)
                .and_then(|free| runway_days(free, daily_burn.minor))
        });
        out.push(ClientSummary {
            client_id: id(&cid)?,
            name: c.try_get("name")?,
            cash: cash_position,
            runway_days: runway,
            due_soon_count: u32::try_from(due_n).unwrap_or(0),
            due_soon_total,
            status,
            connection_issue,
            waiting_count: u32::try_from(waiting.get(&cid).copied().unwrap_or(0)).unwrap_or(0),
            open_hygiene: u32::try_from(hygiene_open.get(&cid).copied().unwrap_or(0)).unwrap_or(0),
        });
    }
    Ok(out)
}

/// A firm's per-client figures, each read in one grouped query: the cash
/// snapshot (balance, as of), outflows in the burn window, commitments,
/// rail statuses, bills due soon (count, total), second approvals waiting
/// and open hygiene items.
struct PerClient {
    cash: HashMap<String, (i64, i64)>,
    outflows: HashMap<String, i64>,
    committed: HashMap<String, i64>,
    health: HashMap<String, Vec<(String, String)>>,
    due: HashMap<String, (i64, i64)>,
    waiting: HashMap<String, i64>,
    hygiene_open: HashMap<String, i64>,
}

async fn per_client(
    conn: &mut sqlx::AnyConnection,
    firm: &FirmId,
    today: NaiveDate,
    only: Option<&str>,
) -> StoreResult<PerClient> {
    let mut cash: HashMap<String, (i64, i64)> = HashMap::new();
    for r in bind_only(
        sqlx::query(&format!(
            "select s.client_id, s.available_minor, s.as_of from cash_snapshot s
             join client c on c.client_id = s.client_id where c.firm_id = $1{}",
            of_client("s.client_id", 2, only)
        ))
        .bind(firm.as_str()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        cash.insert(
            r.try_get("client_id")?,
            (r.try_get("available_minor")?, r.try_get("as_of")?),
        );
    }

    let mut outflows: HashMap<String, i64> = HashMap::new();
    for r in bind_only(
        sqlx::query(&format!(
            "select t.client_id, cast(sum(t.amount_minor) as bigint) as total from bank_txn t
             join client c on c.client_id = t.client_id
             where c.firm_id = $1 and t.amount_minor > 0 and t.txn_date > $2 and t.txn_date <= $3
               and t.removed_at is null{}
             group by t.client_id",
            of_client("t.client_id", 4, only)
        ))
        .bind(firm.as_str())
        .bind(burn_window_start(today).to_string())
        .bind(today.to_string()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        outflows.insert(r.try_get("client_id")?, r.try_get("total")?);
    }

    let committed = committed_by_client(&mut *conn, firm, only).await?;

    let mut health: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for r in bind_only(
        sqlx::query(&format!(
            "select r.client_id, r.rail, r.status from rail_connection r
             join client c on c.client_id = r.client_id where c.firm_id = $1{}",
            of_client("r.client_id", 2, only)
        ))
        .bind(firm.as_str()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        health
            .entry(r.try_get("client_id")?)
            .or_default()
            .push((r.try_get("rail")?, r.try_get("status")?));
    }

    let mut due: HashMap<String, (i64, i64)> = HashMap::new();
    for r in bind_only(
        sqlx::query(&format!(
            "select b.client_id, count(*) as n, cast(sum(b.balance_minor) as bigint) as total from staged_bill b
             where b.firm_id = $1 and b.status = 'open' and b.due_date <= $2
               and not exists (select 1 from payment p where p.bill_id = b.bill_id
                               and p.state not in ({})){}
             group by b.client_id",
            dead_states(),
            of_client("b.client_id", 3, only)
        ))
        .bind(firm.as_str())
        .bind((today + Duration::days(DUE_SOON_DAYS)).to_string()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        due.insert(r.try_get("client_id")?, (r.try_get("n")?, r.try_get("total")?));
    }

    // What waits on a person, per client: second approvals, hygiene items.
    let mut waiting: HashMap<String, i64> = HashMap::new();
    for r in bind_only(
        sqlx::query(&format!(
            "select client_id, count(*) as n from payment
             where firm_id = $1 and state = 'awaiting_second_approval'{} group by client_id",
            of_client("client_id", 2, only)
        ))
        .bind(firm.as_str()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        waiting.insert(r.try_get("client_id")?, r.try_get("n")?);
    }
    let mut hygiene_open: HashMap<String, i64> = HashMap::new();
    for r in bind_only(
        sqlx::query(&format!(
            "select client_id, count(*) as n from hygiene_item
             where firm_id = $1 and status = 'open' and client_id is not null{} group by client_id",
            of_client("client_id", 2, only)
        ))
        .bind(firm.as_str()),
        only,
    )
    .fetch_all(&mut *conn)
    .await?
    {
        hygiene_open.insert(r.try_get("client_id")?, r.try_get("n")?);
    }
    Ok(PerClient {
        cash,
        outflows,
        committed,
        health,
        due,
        waiting,
        hygiene_open,
    })
}

/// The portfolio's verdict on a client: untrusted while a rail it depends
/// on is broken, no data without a balance, stale past the policy's age,
/// else whether the buffer holds now (breach) and with the bills due soon
/// paid (at risk).
fn guardrail_status(
    cash: &CashPosition,
    connection_broken: bool,
    due_soon_total: &Money,
    now: DateTime<Utc>,
) -> StoreResult<GuardrailStatus> {
    let check = |available: &Money, selected: &Money| {
        evaluate_liquidity(&LiquidityInput {
            available: available.clone(),
            approved_unpaid: cash.approved_unpaid.clone(),
            selected: selected.clone(),
            daily_burn: cash.daily_burn.clone(),
            buffer_days: cash.buffer_days,
        })
        .map(|v| v.pass)
        .map_err(corrupt)
    };
    Ok(match &cash.available {
        _ if connection_broken => GuardrailStatus::Untrusted,
        None => GuardrailStatus::NoData,
        Some(_) if !cash.freshness(now).is_fresh() => GuardrailStatus::Stale,
        Some(avail) => {
            if !check(avail, &Money::zero(avail.currency.clone()))? {
                GuardrailStatus::Breach
            } else if !check(avail, due_soon_total)? {
                GuardrailStatus::AtRisk
            } else {
                GuardrailStatus::Ok
            }
        }
    })
}

/// The first rail an approval depends on that is not healthy, said for a
/// person ("Ramp needs to be reconnected").
pub fn connection_issue(rails: &[(String, String)]) -> Option<String> {
    Rail::FOR_APPROVAL.iter().find_map(|r| {
        let status = rails
            .iter()
            .find(|(rail, _)| rail == r.as_str())
            .map(|(_, s)| s.as_str());
        let why = match status {
            None => "is not connected",
            Some("needs_reconnect") if *r == Rail::Plaid => "needs its login renewed",
            Some("needs_reconnect") => "needs to be reconnected",
            Some("disconnected") => "was disconnected",
            _ => return None,
        };
        Some(format!("{} {why}", r.display_name()))
    })
}

/// Open bills of a client that have no payment yet, soonest due first.
pub async fn open_bills(
    pool: &AnyPool,
    firm: &FirmId,
    client: &ClientId,
    today: NaiveDate,
) -> StoreResult<Vec<BillView>> {
    let rows = sqlx::query(&format!(
        "select b.bill_id, b.vendor_name, b.doc_number, b.balance_minor, b.currency, b.due_date
         from staged_bill b
         where b.firm_id = $1 and b.client_id = $2 and b.status = 'open'
           and not exists (select 1 from payment p where p.bill_id = b.bill_id
                           and p.state not in ({}))
         order by b.due_date, b.bill_id",
        dead_states()
    ))
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
        if s == PaymentState::AwaitingSecondApproval {
            // The first of two approvals comes before the second.
            return 0;
        }
        crate::domain::custody::CHAIN
            .iter()
            .position(|c| *c == s)
            .map_or(usize::MAX, |i| i + 1)
    };
    steps.sort_by_key(|s| (order(s.state), s.at));
    let approvals = {
        let mut conn = pool.acquire().await?;
        super::decisions::approvals_of(&mut conn, payment.as_str()).await?
    };
    let plaid_txn_id: Option<String> = row.try_get("plaid_txn_id")?;
    let bank_debit_on = match &plaid_txn_id {
        Some(txn) => sqlx::query_scalar::<_, String>(
            "select t.txn_date from bank_txn t join payment p on p.client_id = t.client_id
             where p.payment_id = $1 and t.txn_id = $2",
        )
        .bind(payment.as_str())
        .bind(txn)
        .fetch_optional(pool)
        .await?
        .map(|d| super::parse_date(&d))
        .transpose()?,
        None => None,
    };
    let order_notes = crate::domain::evidence_order::notes(
        &steps.iter().map(|s| (s.state, s.at)).collect::<Vec<_>>(),
        bank_debit_on,
    );
    Ok(PaymentDetail {
        summary,
        steps,
        approvals,
        ramp_bill_id: row.try_get("ramp_bill_id")?,
        qbo_bill_payment_id: row.try_get("qbo_bill_payment_id")?,
        plaid_txn_id,
        order_notes,
    })
}

/// The firm's clients, by name.
pub async fn client_names(
    conn: &mut sqlx::AnyConnection,
    firm: &FirmId,
) -> StoreResult<Vec<(ClientId, String)>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select client_id, name from client where firm_id = $1 order by name")
            .bind(firm.as_str())
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(client, name)| Ok((id(&client)?, name)))
        .collect()
}
