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

use super::JobError;
use crate::services::Services;
use app::domain::calendar::add_business_days;
use app::domain::custody::PaymentState;
use app::model::{ReasonCode, Severity};
use app::ssr::jobs::Job;
use app::ssr::store::audit::{self, Entry};
use app::ssr::store::payments::{self, clear_flag, flag, PaymentRow};
use app::ssr::store::{bank, commit, jobs, StoreResult, Tx};
use chrono::{DateTime, Duration, Utc};

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
        jobs::enqueue(
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
    let window_end = add_business_days(paid_date, super::verify::CASH_WINDOW_BUSINESS_DAYS);
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
            paid_date - Duration::days(1),
            window_end,
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
