//! Stopping an approved payment until the money moves (issue #16: a client
//! approved on day 1 can be in breach by day 6, and the payment must not go
//! out regardless).
//!
//! - Nothing sent to Ramp yet: the payment is cancelled in one guarded
//!   write that a release starting at the same moment cannot slip past
//!   ([`payments::claim_unreleased`]).
//! - On Ramp: Ramp archives the bill **first**; only then is the payment
//!   cancelled. Ramp refusing (paid, or a debit already on its way) leaves
//!   the payment as it is and says so.
//! - A create sent but not yet answered: neither side knows whether the
//!   bill exists, so the stop is refused for now (the release settles it
//!   within minutes) rather than guessed.
//!
//! Cancelling releases the payment's committed cash (a dead state holds
//! none), re-opens the bill for a new decision, closes the payment's open
//! holds, and is audited with the reason.

use crate::domain::custody::PaymentState;
use crate::error::AppError;
use crate::model::{ClientId, CustodyOwner, ReasonCode, Role};
use crate::ssr::auth::{state, CurrentUser};
use crate::ssr::ports::{PortError, StopOutcome};
use crate::ssr::store::payments::{self, PaymentRow, Step, StepOutcome};
use crate::ssr::store::{commit, Tx};
use chrono::{DateTime, Utc};
use serde_json::json;

/// The shortest reason accepted: enough for an auditor to read why.
pub const MIN_REASON_CHARS: usize = 5;

/// Holds on a payment that stopping it settles.
/// (An override's review stays open: it is about the decision, which
/// stands in the record whether or not the money went.)
/// A duplicate payment stopped before Ramp paid it is settled too: the
/// vendor is paid once.
const SETTLED_BY_STOP: [ReasonCode; 4] = [
    ReasonCode::VendorBankChanged,
    ReasonCode::ReleaseFailed,
    ReasonCode::ReleaseUnconfirmed,
    ReasonCode::DuplicatePayment,
];

pub async fn stop_payment(
    user: &CurrentUser,
    payment_id: &str,
    reason: &str,
) -> Result<String, AppError> {
    user.require(Role::Advisor)?;
    let reason = super::decide::required_reason(reason, MIN_REASON_CHARS, "stopped")?;
    let st = state()?;
    let p = {
        let mut conn = st.db.acquire().await?;
        payments::get(&mut conn, payment_id)
            .await?
            .filter(|p| p.firm_id == user.firm_id.as_str())
            .ok_or(AppError::NotFound)?
    };
    match p.state()? {
        PaymentState::Approved | PaymentState::Released => {}
        PaymentState::AwaitingSecondApproval => {
            return Err(AppError::Conflict(
                "This payment is waiting for a second approval: reject it instead.".into(),
            ))
        }
        PaymentState::Paid | PaymentState::Recorded | PaymentState::Verified => {
            return Err(AppError::Conflict(
                "Ramp has already paid this bill: the payment can no longer be stopped.".into(),
            ))
        }
        other => {
            return Err(AppError::Conflict(format!(
                "This payment is {}: there is nothing to stop.",
                other.as_str()
            )))
        }
    }
    let now = st.clock.now();

    // Not on Ramp yet: cancel here, racing no one.
    let mut tx = st.db.begin().await?;
    if payments::claim_unreleased(&mut tx, payment_id, now).await? {
        cancel(
            &mut tx,
            &p,
            user,
            reason,
            now,
            "stopped before release: nothing was sent to Ramp".into(),
        )
        .await?;
        commit(tx).await?;
        return stopped_message(&p);
    }
    drop(tx);

    // On Ramp (or on its way there): Ramp must archive it first.
    let current = {
        let mut conn = st.db.acquire().await?;
        payments::require(&mut conn, payment_id).await?
    };
    let Some(ramp_bill_id) = current.ramp_bill_id.clone() else {
        return Err(AppError::Conflict(
            "This payment is being sent to Ramp right now, so it cannot be stopped this \
             moment. Try again in a few minutes."
                .into(),
        ));
    };
    let client = ClientId::parse(&p.client_id)
        .map_err(|e| AppError::internal("a stored id does not parse", e))?;
    match st.bill_pay.stop_bill(&client, &ramp_bill_id).await {
        Ok(StopOutcome::Archived) => {}
        Ok(StopOutcome::AlreadyPaid) => {
            return Err(AppError::Conflict(
                "Ramp has already paid this bill: the payment can no longer be stopped.".into(),
            ))
        }
        Ok(StopOutcome::Refused(why)) => {
            return Err(AppError::Conflict(format!(
                "Ramp refused to stop the payment: it is probably already on its way to the \
                 vendor. Nothing changed. (Ramp said: {why})"
            )))
        }
        Err(PortError::LoginRequired) => {
            return Err(AppError::Conflict(
                "Ramp needs reconnecting before the payment can be stopped.".into(),
            ))
        }
        Err(PortError::Unavailable(why)) => return Err(AppError::CashUnavailable(why)),
    }
    let mut tx = st.db.begin().await?;
    cancel(
        &mut tx,
        &current,
        user,
        reason,
        now,
        format!("stopped on Ramp: bill {ramp_bill_id} archived, so Ramp will not pay it"),
    )
    .await?;
    commit(tx).await?;
    stopped_message(&p)
}

async fn cancel(
    tx: &mut Tx<'_>,
    p: &PaymentRow,
    user: &CurrentUser,
    reason: &str,
    at: DateTime<Utc>,
    how: String,
) -> Result<(), AppError> {
    let step = payments::record_step(
        tx,
        &p.payment_id,
        Step {
            to: PaymentState::Cancelled,
            owner: CustodyOwner::RowCol,
            actor: &user.email,
            evidence: format!("{how}. Reason: {reason}"),
            at,
            audit_detail: Some(json!({
                "reason": reason,
                "amount_minor": p.amount_minor,
                "stopped_by": user.user_id.as_str(),
            })),
        },
    )
    .await?;
    if step != StepOutcome::Advanced {
        return Err(AppError::Conflict(
            "This payment changed meanwhile; reload.".into(),
        ));
    }
    let note = format!("Payment stopped: {reason}");
    for code in SETTLED_BY_STOP {
        payments::settle_flag(
            tx,
            &p.payment_id,
            code,
            at,
            crate::ssr::store::hygiene::ClosedBy {
                by: &user.email,
                note: &note,
            },
        )
        .await?;
    }
    Ok(())
}

fn stopped_message(p: &PaymentRow) -> Result<String, AppError> {
    Ok(format!(
        "Stopped: {} will not be paid, is no longer committed, and the bill can be decided again.",
        p.amount()?
    ))
}
