//! Payments and their chain of custody (`payment`, `custody_event`).
//!
//! A payment's state changes in exactly one place, [`record_step`]: it
//! applies the pure custody rule (`domain::custody::transition`), writes the
//! custody step, moves the state with a guard on the state it read
//! (`… where state = $current`, so a concurrent writer can never be
//! overwritten), and appends the audit entry, all in the caller's
//! transaction. A new payment is inserted as `staged` and approved through
//! the same function.

use super::audit::{self, Entry};
use super::db::{to_ms, Tx};
use super::{hygiene, is_unique_violation, parse_date, parse_id, StoreError, StoreResult};
use crate::domain::custody::{transition, PaymentState, Transition};
use crate::model::{
    ClientId, Currency, CustodyOwner, FirmId, Money, PaymentId, ReasonCode, Severity, UserId,
};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AnyConnection;

/// One payment as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub payment_id: String,
    pub firm_id: String,
    pub client_id: String,
    pub bill_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub state: String,
    pub flag_reason: Option<String>,
    pub payment_arrival_date: String,
    pub ramp_bill_id: Option<String>,
    pub qbo_bill_payment_id: Option<String>,
    pub plaid_txn_id: Option<String>,
    pub paid_date: Option<String>,
    pub approved_by: String,
}

impl PaymentRow {
    pub fn state(&self) -> StoreResult<PaymentState> {
        PaymentState::parse(&self.state).ok_or_else(|| super::corrupt(&self.state))
    }

    pub fn amount(&self) -> StoreResult<Money> {
        let cur = Currency::parse(&self.currency).map_err(super::corrupt)?;
        Ok(Money::new(self.amount_minor, cur))
    }

    pub fn arrival_date(&self) -> StoreResult<NaiveDate> {
        parse_date(&self.payment_arrival_date)
    }

    pub fn paid_date(&self) -> StoreResult<Option<NaiveDate>> {
        self.paid_date.as_deref().map(parse_date).transpose()
    }

    pub fn firm(&self) -> StoreResult<FirmId> {
        parse_id(&self.firm_id)
    }
}

const COLUMNS: &str = "payment_id, firm_id, client_id, bill_id, amount_minor, currency, state,
    flag_reason, payment_arrival_date, ramp_bill_id, qbo_bill_payment_id, plaid_txn_id,
    paid_date, approved_by";

/// A payment by id (no firm scope: for jobs, which act for the system).
pub async fn get(conn: &mut AnyConnection, payment_id: &str) -> StoreResult<Option<PaymentRow>> {
    let sql = format!("select {COLUMNS} from payment where payment_id = $1");
    Ok(sqlx::query_as::<_, PaymentRow>(&sql)
        .bind(payment_id)
        .fetch_optional(conn)
        .await?)
}

/// A payment by id, or `NotFound`.
pub async fn require(conn: &mut AnyConnection, payment_id: &str) -> StoreResult<PaymentRow> {
    get(conn, payment_id).await?.ok_or(StoreError::NotFound)
}

/// One step of the chain of custody.
pub struct Step<'a> {
    pub to: PaymentState,
    pub owner: CustodyOwner,
    pub actor: &'a str,
    pub evidence: String,
    pub at: DateTime<Utc>,
    /// Extra fields for the audit entry (merged into `{owner, evidence}`).
    pub audit_detail: Option<serde_json::Value>,
}

/// What [`record_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step is new and the payment moved to it.
    Advanced,
    /// The step is new but late: recorded in the chain, state kept.
    Recorded,
    /// The step was already in the chain: nothing written (a replay).
    Duplicate,
    /// The payment is terminal in a way this step cannot change.
    Refused,
}

impl StepOutcome {
    pub fn is_new(self) -> bool {
        matches!(self, StepOutcome::Advanced | StepOutcome::Recorded)
    }
}

/// The one function that changes a payment's state (see the module docs).
pub async fn record_step(
    tx: &mut Tx<'_>,
    payment_id: &str,
    step: Step<'_>,
) -> StoreResult<StepOutcome> {
    let payment = require(tx, payment_id).await?;
    let current = payment.state()?;
    let decision = if super::super::planted::active(super::super::planted::Bug::NoStateGuard) {
        Transition::Advance
    } else {
        // A failure the bank or Ramp evidences (Plaid or Ramp owns the
        // step) is an ACH return: the money came back after it left. RowCol's
        // own failures (a release that gave up) happen before it leaves.
        let returned = step.to == PaymentState::Failed
            && matches!(step.owner, CustodyOwner::Plaid | CustodyOwner::Ramp);
        transition(current, step.to, returned)
    };
    if decision == Transition::Refuse {
        return Ok(StepOutcome::Refused);
    }
    let inserted = sqlx::query(
        "insert into custody_event (payment_id, state, owner, actor, evidence, at)
         values ($1, $2, $3, $4, $5, $6) on conflict (payment_id, state) do nothing",
    )
    .bind(payment_id)
    .bind(step.to.as_str())
    .bind(step.owner.as_str())
    .bind(step.actor)
    .bind(&step.evidence)
    .bind(to_ms(step.at))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(StepOutcome::Duplicate);
    }
    let outcome = if decision == Transition::Advance {
        let sql = if super::super::planted::active(super::super::planted::Bug::NoStateGuard) {
            super::super::planted::UNGUARDED_STATE_UPDATE
        } else {
            "update payment set state = $1, updated_at = $2 where payment_id = $3 and state = $4"
        };
        let moved = sqlx::query(sql)
            .bind(step.to.as_str())
            .bind(to_ms(step.at))
            .bind(payment_id)
            .bind(current.as_str())
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if moved == 0 {
            return Err(StoreError::Conflict(
                "the payment changed state concurrently",
            ));
        }
        StepOutcome::Advanced
    } else {
        StepOutcome::Recorded
    };
    let mut detail = serde_json::json!({ "owner": step.owner, "evidence": step.evidence });
    if let (Some(serde_json::Value::Object(extra)), Some(obj)) =
        (step.audit_detail, detail.as_object_mut())
    {
        obj.extend(extra);
    }
    audit::record(
        tx,
        &payment.firm()?,
        step.at,
        Entry {
            actor: step.actor,
            action: &format!("payment.{}", step.to.as_str()),
            subject: payment_id,
            detail,
        },
    )
    .await?;
    Ok(outcome)
}

/// A payment to create for an approved bill.
pub struct NewPayment<'a> {
    pub payment_id: &'a PaymentId,
    pub firm_id: &'a FirmId,
    pub client_id: &'a ClientId,
    pub bill_id: &'a str,
    pub amount: &'a Money,
    pub arrival: NaiveDate,
    pub approved_by: &'a UserId,
    /// The policy version the approval was judged by.
    pub policy_version: i64,
    /// An admin overrode a refusing rule to approve it.
    pub overridden: bool,
}

/// Insert a payment (as `staged`) and approve it through [`record_step`]
/// (to `approved`, or to `awaiting_second_approval` under dual control).
/// A bill that already has a payment is a `Conflict`.
pub async fn create_approved(
    tx: &mut Tx<'_>,
    new: NewPayment<'_>,
    approval: Step<'_>,
) -> StoreResult<()> {
    let inserted = sqlx::query(
        "insert into payment (payment_id, firm_id, client_id, bill_id, amount_minor, currency,
            state, payment_arrival_date, approved_by, created_at, updated_at, policy_version,
            overridden)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)",
    )
    .bind(new.payment_id.as_str())
    .bind(new.firm_id.as_str())
    .bind(new.client_id.as_str())
    .bind(new.bill_id)
    .bind(new.amount.minor)
    .bind(new.amount.currency.as_str())
    .bind(PaymentState::Staged.as_str())
    .bind(new.arrival.to_string())
    .bind(new.approved_by.as_str())
    .bind(to_ms(approval.at))
    .bind(new.policy_version)
    .bind(i64::from(new.overridden))
    .execute(&mut **tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict("a selected bill is already approved"))
        }
        other => {
            other?;
        }
    }
    record_step(tx, new.payment_id.as_str(), approval).await?;
    Ok(())
}

/// Ramp accepted the bill: remember its id and the arrival date it was
/// released with (once; a replayed release changes nothing).
pub async fn set_released_bill(
    tx: &mut Tx<'_>,
    payment_id: &str,
    ramp_bill_id: &str,
    arrival: NaiveDate,
) -> StoreResult<()> {
    sqlx::query(
        "update payment set ramp_bill_id = $1, payment_arrival_date = $2
         where payment_id = $3 and ramp_bill_id is null",
    )
    .bind(ramp_bill_id)
    .bind(arrival.to_string())
    .bind(payment_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The release is about to send `POST /bills` to Ramp: remember when, in
/// its own committed write BEFORE the request goes out, so that any later
/// attempt (after a timeout, a 5xx, a crash) knows the bill may exist and
/// looks for it instead of creating another. Only an `approved` payment is
/// being released.
pub async fn set_create_attempted(
    conn: &mut AnyConnection,
    payment_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let n = sqlx::query(
        "update payment set ramp_create_attempted_at = $1
         where payment_id = $2 and state = 'approved'",
    )
    .bind(to_ms(at))
    .bind(payment_id)
    .execute(conn)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(StoreError::Conflict("the payment is no longer approved"));
    }
    Ok(())
}

/// Ramp refused the create outright (a 4xx answer): nothing was made, and
/// earlier attempts were looked for and found absent, so no create is
/// outstanding any more.
///
/// Only the mark `set_at` — the one this attempt wrote: a later attempt
/// (this one's lease lost meanwhile) may have marked a create of its own
/// that is still on its way.
pub async fn clear_create_attempted(
    conn: &mut AnyConnection,
    payment_id: &str,
    set_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update payment set ramp_create_attempted_at = null
         where payment_id = $1 and state = 'approved' and ramp_create_attempted_at = $2",
    )
    .bind(payment_id)
    .bind(to_ms(set_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// A person stops an approved payment that nothing has sent to Ramp yet.
/// The guarded write claims the row in the caller's transaction: a release
/// marking its create after this waits for the transaction and then finds
/// the payment no longer approved ([`set_create_attempted`] is guarded on
/// it). False when a create was already marked or Ramp's bill is known:
/// then only Ramp can stop it.
pub async fn claim_unreleased(
    tx: &mut Tx<'_>,
    payment_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let n = sqlx::query(
        "update payment set updated_at = $1
         where payment_id = $2 and state = 'approved'
           and ramp_create_attempted_at is null and ramp_bill_id is null",
    )
    .bind(to_ms(at))
    .bind(payment_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// When a Ramp create was last attempted for the payment, if ever.
pub async fn create_attempted_at(
    conn: &mut AnyConnection,
    payment_id: &str,
) -> StoreResult<Option<DateTime<Utc>>> {
    let ms: Option<i64> =
        sqlx::query_scalar("select ramp_create_attempted_at from payment where payment_id = $1")
            .bind(payment_id)
            .fetch_optional(conn)
            .await?
            .ok_or(StoreError::NotFound)?;
    Ok(ms.map(super::db::from_ms))
}

/// An early `bills.paid` told us Ramp's bill id before the release did.
pub async fn attach_ramp_bill(
    conn: &mut AnyConnection,
    payment_id: &str,
    ramp_bill_id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "update payment set ramp_bill_id = $1 where payment_id = $2 and ramp_bill_id is null",
    )
    .bind(ramp_bill_id)
    .bind(payment_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The date Ramp paid it (the first one reported wins).
pub async fn set_paid_date(tx: &mut Tx<'_>, payment_id: &str, date: NaiveDate) -> StoreResult<()> {
    sqlx::query("update payment set paid_date = coalesce(paid_date, $1) where payment_id = $2")
        .bind(date.to_string())
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The QBO BillPayment that records it.
pub async fn set_ledger_record(
    tx: &mut Tx<'_>,
    payment_id: &str,
    bill_payment_id: &str,
) -> StoreResult<()> {
    sqlx::query("update payment set qbo_bill_payment_id = $1 where payment_id = $2")
        .bind(bill_payment_id)
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The bank transaction that evidences it. A transaction evidences at most
/// one payment (a unique index): a second claim is a `Conflict`, the lost
/// race of two verifications, and the loser looks again on its retry.
pub async fn set_bank_evidence(tx: &mut Tx<'_>, payment_id: &str, txn_id: &str) -> StoreResult<()> {
    sqlx::query("update payment set plaid_txn_id = $1 where payment_id = $2")
        .bind(txn_id)
        .bind(payment_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict("the bank transaction already evidences another payment")
            } else {
                e.into()
            }
        })?;
    Ok(())
}

/// Open (or keep) a discrepancy on a payment: sets its flag, files one
/// hygiene item per reason and audits it.
pub async fn flag(
    tx: &mut Tx<'_>,
    payment_id: &str,
    reason: ReasonCode,
    severity: Severity,
    detail: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let payment = require(tx, payment_id).await?;
    if payment.flag_reason.as_deref() == Some(reason.as_str()) {
        return Ok(());
    }
    sqlx::query("update payment set flag_reason = $1, updated_at = $2 where payment_id = $3")
        .bind(reason.as_str())
        .bind(to_ms(at))
        .bind(payment_id)
        .execute(&mut **tx)
        .await?;
    hygiene::file(
        tx,
        hygiene::NewItem {
            firm_id: &payment.firm_id,
            client_id: Some(&payment.client_id),
            payment_id: Some(payment_id),
            severity,
            reason_code: reason,
            detail,
            at,
            job_id: None,
            opened_by: None,
        },
    )
    .await?;
    audit::record(
        tx,
        &payment.firm()?,
        at,
        Entry {
            actor: "rowcol",
            action: "payment.flagged",
            subject: payment_id,
            detail: serde_json::json!({ "reason": reason, "severity": severity, "detail": detail }),
        },
    )
    .await?;
    Ok(())
}

/// The approved payments of a client to the QBO vendor that are flagged
/// for `reason` (e.g. held for the vendor's bank account change).
pub async fn flagged_for_vendor(
    conn: &mut AnyConnection,
    client_id: &str,
    qbo_vendor_id: &str,
    reason: ReasonCode,
) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select p.payment_id from payment p join staged_bill b on b.bill_id = p.bill_id
         where p.client_id = $1 and b.qbo_vendor_id = $2 and p.flag_reason = $3
           and p.state = 'approved'
         order by p.payment_id",
    )
    .bind(client_id)
    .bind(qbo_vendor_id)
    .bind(reason.as_str())
    .fetch_all(conn)
    .await?)
}

/// Late evidence arrived: clear a soft flag and resolve its hygiene items
/// (the tray says the flag cleared itself).
pub async fn clear_flag(
    tx: &mut Tx<'_>,
    payment_id: &str,
    reason: ReasonCode,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    settle_flag(
        tx,
        payment_id,
        reason,
        at,
        hygiene::ClosedBy {
            by: hygiene::CLEARED_ITSELF,
            note: "Cleared itself: the evidence it was waiting for arrived.",
        },
    )
    .await
}

/// Clear a flag and resolve its hygiene items, closed by `closed` (a
/// person's act that settles it, or the evidence).
pub async fn settle_flag(
    tx: &mut Tx<'_>,
    payment_id: &str,
    reason: ReasonCode,
    at: DateTime<Utc>,
    closed: hygiene::ClosedBy<'_>,
) -> StoreResult<()> {
    sqlx::query("update payment set flag_reason = null where payment_id = $1 and flag_reason = $2")
        .bind(payment_id)
        .bind(reason.as_str())
        .execute(&mut **tx)
        .await?;
    hygiene::resolve_for_payment(tx, payment_id, reason, at, closed).await?;
    Ok(())
}

/// A client's payments on Ramp and not yet paid whose bill the ledger no
/// longer lists as open (paid or deleted there meanwhile), not already
/// flagged as a duplicate: `(payment_id, qbo_bill_id)`.
pub async fn released_with_closed_bill(
    conn: &mut AnyConnection,
    client_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "select p.payment_id, b.qbo_bill_id from payment p join staged_bill b on b.bill_id = p.bill_id
         where p.client_id = $1 and p.state = 'released' and b.status = 'closed'
           and p.ramp_bill_id is not null
           and (p.flag_reason is null or p.flag_reason <> 'duplicate_payment')
         order by p.payment_id",
    )
    .bind(client_id)
    .fetch_all(conn)
    .await?)
}

/// The payment Ramp's bill `ramp_bill_id` of business `business` pays, with
/// its client: `(payment_id, client_id)`.
pub async fn find_by_ramp_bill(
    conn: &mut AnyConnection,
    business: &str,
    ramp_bill_id: &str,
) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "select p.payment_id, p.client_id from payment p
         join rail_connection c on c.client_id = p.client_id and c.rail = 'ramp'
         where c.external_id = $1 and p.ramp_bill_id = $2",
    )
    .bind(business)
    .bind(ramp_bill_id)
    .fetch_optional(conn)
    .await?)
}

/// Whether `payment_id` is a payment of `client_id`.
pub async fn belongs_to_client(
    conn: &mut AnyConnection,
    payment_id: &str,
    client_id: &str,
) -> StoreResult<bool> {
    let found: Option<String> = sqlx::query_scalar(
        "select payment_id from payment where payment_id = $1 and client_id = $2",
    )
    .bind(payment_id)
    .bind(client_id)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Released payments whose arrival date has come, oldest first:
/// `(payment_id, client_id, ramp_bill_id)`.
pub async fn released_and_due(
    conn: &mut AnyConnection,
    today: NaiveDate,
    limit: i64,
) -> StoreResult<Vec<Watched>> {
    Ok(sqlx::query_as(
        "select payment_id, client_id, ramp_bill_id, created_at from payment
         where state = $1 and ramp_bill_id is not null and payment_arrival_date <= $2
         order by payment_arrival_date limit $3",
    )
    .bind(PaymentState::Released.as_str())
    .bind(today.to_string())
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// A payment a sweep watches on Ramp (released and due, or recently paid).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Watched {
    pub payment_id: String,
    pub client_id: String,
    pub ramp_bill_id: String,
    /// When it was approved (its Ramp bill was created after).
    pub created_at: i64,
}

/// Payments Ramp paid on or after `since` (`paid`, `recorded` or
/// `verified`) with their client and Ramp bill, at most `limit`, oldest
/// paid first (then by client and QBO bill, an order that does not depend
/// on random ids): an ACH debit that came back shows on Ramp as the bill
/// OPEN again.
pub async fn paid_since(
    conn: &mut AnyConnection,
    since: NaiveDate,
    limit: i64,
) -> StoreResult<Vec<Watched>> {
    Ok(sqlx::query_as(
        "select p.payment_id, p.client_id, p.ramp_bill_id, p.created_at from payment p
         join client c on c.client_id = p.client_id
         join staged_bill s on s.bill_id = p.bill_id
         where p.state in ('paid', 'recorded', 'verified') and p.ramp_bill_id is not null
           and p.paid_date >= $1
         order by p.paid_date, c.name, s.qbo_bill_id, p.payment_id limit $2",
    )
    .bind(since.to_string())
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// The email of the user who approved a payment.
pub async fn approver_email(conn: &mut AnyConnection, payment_id: &str) -> StoreResult<String> {
    sqlx::query_scalar(
        "select u.email from payment p join app_user u on u.user_id = p.approved_by
         where p.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(conn)
    .await?
    .ok_or(StoreError::NotFound)
}

/// A pending bank transaction was replaced by its posted one (Plaid's
/// `pending_transaction_id`): the payment it evidenced follows it. Returns
/// the payments moved.
pub async fn follow_bank_evidence(
    tx: &mut Tx<'_>,
    client_id: &str,
    from_txn: &str,
    to_txn: &str,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "update payment set plaid_txn_id = $1 where client_id = $2 and plaid_txn_id = $3
         returning payment_id",
    )
    .bind(to_txn)
    .bind(client_id)
    .bind(from_txn)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("the posted transaction already evidences another payment")
        } else {
            e.into()
        }
    })
}

/// A released payment that holds no bank evidence yet.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AwaitingDebit {
    pub payment_id: String,
    pub firm_id: String,
    pub amount_minor: i64,
    pub payment_arrival_date: String,
}

impl AwaitingDebit {
    pub fn arrival_date(&self) -> StoreResult<NaiveDate> {
        parse_date(&self.payment_arrival_date)
    }

    pub fn firm(&self) -> StoreResult<FirmId> {
        parse_id(&self.firm_id)
    }
}

/// The client's released payments with no bank evidence: Ramp has not said
/// they are paid, but their ACH debit may already have left the bank.
pub async fn released_without_evidence(
    conn: &mut AnyConnection,
    client_id: &str,
) -> StoreResult<Vec<AwaitingDebit>> {
    Ok(sqlx::query_as(
        "select payment_id, firm_id, amount_minor, payment_arrival_date from payment
         where client_id = $1 and state = 'released' and plaid_txn_id is null
         order by payment_arrival_date, payment_id",
    )
    .bind(client_id)
    .fetch_all(conn)
    .await?)
}

/// The bank removed a transaction without a replacement: the payments it
/// evidenced lose their evidence (and wait for it again). Returns them.
pub async fn drop_bank_evidence(
    tx: &mut Tx<'_>,
    client_id: &str,
    txn_id: &str,
) -> StoreResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "update payment set plaid_txn_id = null where client_id = $1 and plaid_txn_id = $2
         returning payment_id",
    )
    .bind(client_id)
    .bind(txn_id)
    .fetch_all(&mut **tx)
    .await?)
}

/// A payment the bank may have returned: its money left (`paid`,
/// `recorded` or `verified`) for exactly `amount_minor`, on or before
/// `on`, with the vendor it paid.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReturnCandidate {
    pub payment_id: String,
    pub vendor_name: String,
}

/// The payments of a client whose ACH debit a return of `amount_minor`
/// dated `on` may undo, most recently paid first: Ramp paid them, or the
/// bank already showed their debit though RowCol has not heard Ramp say
/// paid (a `released` payment holding bank evidence, or whose debit is in
/// the bank unclaimed).
pub async fn return_candidates(
    tx: &mut Tx<'_>,
    client_id: &str,
    amount_minor: i64,
    on: NaiveDate,
) -> StoreResult<Vec<ReturnCandidate>> {
    Ok(sqlx::query_as(
        "select p.payment_id, s.vendor_name from payment p
         join staged_bill s on s.bill_id = p.bill_id
         where p.client_id = $1 and p.amount_minor = $2
           and (p.state in ('paid', 'recorded', 'verified')
                or (p.state = 'released'
                    and (p.plaid_txn_id is not null
                         -- its debit is in the bank, not yet claimed: the
                         -- sync that brings the return may bring it too
                         or exists (select 1 from bank_txn t
                                    where t.client_id = p.client_id
                                      and t.amount_minor = p.amount_minor
                                      and t.removed_at is null and t.txn_date <= $3
                                      and not exists (select 1 from payment o
                                                      where o.plaid_txn_id = t.txn_id)))))
           and coalesce(p.paid_date, p.payment_arrival_date) <= $3
         order by coalesce(p.paid_date, p.payment_arrival_date) desc, p.payment_id",
    )
    .bind(client_id)
    .bind(amount_minor)
    .bind(on.to_string())
    .fetch_all(&mut **tx)
    .await?)
}
