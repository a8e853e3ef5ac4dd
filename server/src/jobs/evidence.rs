//! Bank evidence as the bank revises it. Plaid's `/transactions/sync` may
//! remove a transaction a payment was verified by; the two cases:
//!
//! - **pending → posted**: Plaid removes the pending transaction and adds the
//!   posted one carrying `pending_transaction_id`. The evidence follows it:
//!   the payment keeps its state, now pointing at the posted transaction.
//! - **plain removal** (e.g. an authorisation that fell off): the payment
//!   loses its evidence and waits for it again. Custody only moves forward,
//!   so a `verified` payment stays `verified` in its history, but it is
//!   flagged `cash_not_seen` (a hygiene item says which transaction
//!   vanished), it no longer counts as debited (its commitment counts again,
//!   see `store::bank::debit_reflected`), and its verification runs again:
//!   a new matching transaction re-attaches evidence and clears the flag.

//!
//! An **ACH return** (the bank credits a paid debit back: `ACH RETURN R01
//! INSUFFICIENT FUNDS <VENDOR>`) fails the payment it undoes, even a
//! verified one, and files a critical hygiene item: see [`ach_return`].

use super::JobError;
use crate::services::Services;
use app::domain::custody::PaymentState;
use app::model::{CustodyOwner, ReasonCode, Severity};
use app::ssr::job_kinds::Job;
use app::ssr::store::audit::{self, Entry};
use app::ssr::store::payments::{self, clear_flag, flag, PaymentRow, Step};
use app::ssr::store::{bank, commit, job_queue, StoreError, StoreResult, Tx};
use chrono::{DateTime, Utc};

/// A transaction added or modified: if it is the posted form of a pending
/// transaction that evidences a payment, the evidence moves to it.
pub async fn follow_posted(
    tx: &mut Tx<'_>,
    client_id: &str,
    txn_id: &str,
    pending_transaction_id: Option<&str>,
) -> StoreResult<()> {
    if let Some(pending) = pending_transaction_id.filter(|p| *p != txn_id) {
        payments::follow_bank_evidence(tx, client_id, pending, txn_id).await?;
    }
    Ok(())
}

/// Plaid removed `txn_id`: mark it, and move or drop the evidence it was.
pub async fn removed(
    tx: &mut Tx<'_>,
    client_id: &str,
    txn_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    bank::mark_removed(tx, client_id, txn_id, at).await?;
    // The posted replacement may have come in this page or an earlier one.
    if let Some(posted) = bank::replacement_of(tx, client_id, txn_id).await? {
        payments::follow_bank_evidence(tx, client_id, txn_id, &posted).await?;
        return Ok(());
    }
    for payment_id in payments::drop_bank_evidence(tx, client_id, txn_id).await? {
        let payment = payments::require(tx, &payment_id).await?;
        if payment.state()? == PaymentState::Verified {
            flag(
                tx,
                &payment_id,
                ReasonCode::CashNotSeen,
                Severity::High,
                &format!(
                    "The bank removed transaction {txn_id}, the evidence this payment was verified by; \
                     waiting for the debit to show again"
                ),
                at,
            )
            .await?;
        }
        // A payment Ramp has not paid yet (its evidence came early) is
        // verified when Ramp says paid; the others look again now.
        if payment.paid_date()?.is_none() {
            continue;
        }
        job_queue::enqueue(
            tx,
            &Job::VerifyPayment {
                payment_id: payment_id.clone(),
            },
            at,
            at,
        )
        .await?;
    }
    Ok(())
}

/// An ACH debit leaves the bank days before Ramp marks the bill paid. A
/// released payment whose debit the bank already shows (the exact amount,
/// in the bank window around its arrival date, claimed by no other
/// payment) takes it as evidence now: the balance that shows the debit and
/// the payment's commitment then do not count the money twice. The state
/// waits for Ramp; verification later checks the evidence again against
/// the paid date. Each claim is its own transaction: a claim lost to a
/// concurrent verification is skipped, not an error.
pub async fn attach_early(st: &Services, client_id: &str) -> Result<(), JobError> {
    use app::domain::matching::{assign, bank_window, Candidate};
    // One read of the payments and one of the transactions for the whole
    // client, matched in memory (issue #19 §1), not a query per payment.
    let (waiting, txns) = {
        let mut conn = st.db.acquire().await?;
        let waiting = payments::released_without_evidence(&mut conn, client_id).await?;
        let expected = waiting
            .iter()
            .map(|w| w.arrival_date())
            .collect::<StoreResult<Vec<_>>>()?;
        let (Some(first), Some(last)) = (expected.iter().min(), expected.iter().max()) else {
            return Ok(());
        };
        let (from, to) = (bank_window(*first).0, bank_window(*last).1);
        let txns = bank::unclaimed_between(&mut conn, client_id, from, to).await?;
        (waiting.into_iter().zip(expected).collect::<Vec<_>>(), txns)
    };
    let candidates = txns
        .iter()
        .map(|t| {
            Ok(Candidate {
                amount_minor: t.amount_minor,
                date: t.txn_date.parse().map_err(|_| {
                    JobError::fatal("corrupt", format!("a bank date {:?}", t.txn_date))
                })?,
            })
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    let picks = assign(
        &waiting
            .iter()
            .map(|(w, arrival)| (w.amount_minor, *arrival))
            .collect::<Vec<_>>(),
        &candidates,
    );
    for ((w, _), pick) in waiting.iter().zip(picks) {
        let Some(i) = pick else { continue };
        let t = &txns[i];
        let now = st.clock.now();
        let firm = w.firm()?;
        let mut tx = st.db.begin().await?;
        match payments::set_bank_evidence(&mut tx, &w.payment_id, &t.txn_id).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        audit::record(
            &mut tx,
            &firm,
            now,
            Entry {
                actor: "rowcol:sync",
                action: "payment.bank_debit_seen",
                subject: &w.payment_id,
                detail: serde_json::json!({
                    "plaid_txn_id": t.txn_id,
                    "txn_date": t.txn_date,
                    "before_ramp_paid": true,
                }),
            },
        )
        .await?;
        commit(tx).await?;
    }
    Ok(())
}

/// Verification of a payment that is `verified` but lost its evidence: look
/// for a live transaction of the amount in its window again (the state does
/// not move; the evidence and the flag do).
pub async fn reattach(st: &Services, payment: &PaymentRow) -> Result<(), JobError> {
    let payment_id = payment.payment_id.as_str();
    let amount = payment.amount()?;
    let paid_date = payment
        .paid_date()?
        .ok_or_else(|| JobError::fatal("not_paid", "a verified payment without a paid date"))?;
    super::sync::sync_transactions(st, &payment.client_id).await?;
    let found = {
        let mut conn = st.db.acquire().await?;
        // Still holding evidence (a concurrent sync re-attached it): done.
        if bank::debit_reflected(&mut conn, payment_id).await? {
            return Ok(());
        }
        bank::find_payment_evidence(
            &mut conn,
            &payment.client_id,
            amount.minor,
            paid_date,
            payment_id,
        )
        .await?
    };
    let Some(t) = found else {
        return Err(JobError::retry(
            "evidence_pending",
            "the bank transaction that evidenced this payment was removed; none seen since",
        ));
    };
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    payments::set_bank_evidence(&mut tx, payment_id, &t.txn_id).await?;
    clear_flag(&mut tx, payment_id, ReasonCode::CashNotSeen, now).await?;
    audit::record(
        &mut tx,
        &payment.firm()?,
        now,
        Entry {
            actor: "rowcol:verify",
            action: "payment.evidence_reattached",
            subject: payment_id,
            detail: serde_json::json!({ "plaid_txn_id": t.txn_id, "txn_date": t.txn_date }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

/// The NACHA return code of a bank transaction named like `ACH RETURN R01
/// INSUFFICIENT FUNDS ACME`, with the words after it.
pub fn ach_return_code(name: &str) -> Option<(&str, &str)> {
    let rest = name.trim().strip_prefix("ACH RETURN ")?;
    let (code, words) = rest.split_once(' ').unwrap_or((rest, ""));
    let is_code =
        code.len() == 3 && code.starts_with('R') && code[1..].bytes().all(|b| b.is_ascii_digit());
    is_code.then_some((code, words))
}

/// The bank credited `amount_minor` back as an ACH return (`name`, dated
/// `on`): the payment whose debit it undoes — same amount, money already
/// left, the vendor's name in the bank's description (or the only such
/// payment) — fails with the return code, and a critical hygiene item
/// tells the advisor what to fix in QuickBooks. Its committed cash is
/// released by the state itself (`failed` holds none). Nothing is voided
/// in QuickBooks: that is the advisor's call. A return that matches no
/// payment is left alone (it may be someone else's).
pub async fn ach_return(
    tx: &mut Tx<'_>,
    client_id: &str,
    txn_id: &str,
    name: &str,
    amount_minor: i64,
    on: chrono::NaiveDate,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let Some((code, words)) = ach_return_code(name) else {
        return Ok(());
    };
    let candidates = payments::return_candidates(tx, client_id, amount_minor, on).await?;
    let upper = name.to_uppercase();
    let chosen = candidates
        .iter()
        .find(|c| !c.vendor_name.is_empty() && upper.contains(&c.vendor_name.to_uppercase()))
        .or(match candidates.as_slice() {
            [only] => Some(only),
            _ => None,
        });
    let Some(c) = chosen else {
        return Ok(());
    };
    let payment = payments::require(tx, &c.payment_id).await?;
    let amount = payment.amount()?;
    let reason = if words.is_empty() {
        code.to_owned()
    } else {
        format!("{code} {}", words.to_lowercase())
    };
    let outcome = payments::record_step(
        tx,
        &c.payment_id,
        Step {
            to: PaymentState::Failed,
            owner: CustodyOwner::Plaid,
            actor: "rowcol:sync",
            evidence: format!(
                "Plaid transaction {txn_id} \"{name}\" on {on}: the ACH debit of {amount} came back ({reason})"
            ),
            at,
            audit_detail: Some(serde_json::json!({
                "ach_return": code, "plaid_txn_id": txn_id, "returned_on": on,
            })),
        },
    )
    .await?;
    if outcome != payments::StepOutcome::Advanced {
        return Ok(());
    }
    flag(
        tx,
        &c.payment_id,
        ReasonCode::AchReturned,
        Severity::Critical,
        &format!(
            "ACH return {reason}: the payment of {amount} to {} came back on {on} \
             (bank transaction \"{name}\"). The bill is unpaid again, but the BillPayment \
             Ramp synced to QuickBooks still marks it paid: void that BillPayment in \
             QuickBooks (or pay the vendor another way and keep it), then approve the bill again.",
            c.vendor_name
        ),
        at,
    )
    .await
}

/// How long after Ramp's paid date RowCol watches Ramp for the bill to be
/// OPEN again (NACHA returns for insufficient funds or a closed account
/// come within two banking days of settlement; the margin covers late ones).
pub const RETURN_WATCH_BUSINESS_DAYS: u32 = 10;

/// Ramp shows bill `ramp_bill_id` OPEN again (`paid_at` gone) after it was
/// PAID: its payment did not stick — an ACH return, as Ramp shows one. The
/// payment fails with `ach_returned` and a critical hygiene item, as when
/// the bank shows the return (whichever is seen first; the other is then a
/// no-op). Returns whether the payment failed now.
pub async fn ramp_unpaid_again(
    st: &Services,
    payment_id: &str,
    client_id: &str,
    ramp_bill_id: &str,
) -> Result<bool, JobError> {
    let auth = crate::connections::rail_auth(st, client_id, app::model::Rail::Ramp).await?;
    let bill = st.rails.bill_pay.get_bill(&auth, ramp_bill_id).await?;
    if bill.status != crate::rails::RampBillStatus::Open || bill.paid_at.is_some() {
        return Ok(false);
    }
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let payment = payments::require(&mut tx, payment_id).await?;
    let amount = payment.amount()?;
    let paid = payment
        .paid_date()?
        .map_or_else(|| "earlier".to_owned(), |d| format!("on {d}"));
    let outcome = payments::record_step(
        &mut tx,
        payment_id,
        Step {
            to: PaymentState::Failed,
            owner: CustodyOwner::Ramp,
            actor: "rowcol:reconciler",
            evidence: format!(
                "Ramp bill {ramp_bill_id} is OPEN again after it was PAID {paid}: the payment of {amount} did not stick (an ACH return)"
            ),
            at: now,
            audit_detail: Some(serde_json::json!({
                "ach_return": "unknown", "ramp_bill_id": ramp_bill_id, "seen_on": "ramp",
            })),
        },
    )
    .await?;
    if outcome != payments::StepOutcome::Advanced {
        return Ok(false);
    }
    flag(
        &mut tx,
        payment_id,
        ReasonCode::AchReturned,
        Severity::Critical,
        &format!(
            "ACH return: Ramp shows bill {ramp_bill_id} unpaid again; the payment of {amount} \
             (paid {paid}) came back. The BillPayment Ramp synced to QuickBooks still marks \
             the bill paid: void it in QuickBooks (or pay the vendor another way and keep it), \
             then approve the bill again."
        ),
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(true)
}
