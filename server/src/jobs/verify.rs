//! Verify: cross-check a paid payment against the ledger (QBO BillPayment)
//! and the bank (Plaid transaction), advancing it to `recorded` and
//! `verified`, or flagging a discrepancy for the hygiene tray.

use super::JobError;
use crate::connections::rail_auth;
use crate::rails::{LedgerBillPayment, RailError};
use crate::services::Services;
use app::domain::custody::PaymentState;
use app::domain::matching;
use app::model::{CustodyOwner, Rail, ReasonCode, Severity};
use app::ssr::job_kinds::Job;
use app::ssr::planted::{self, Bug};
use app::ssr::store::payments::{self, clear_flag, flag, Step};
use app::ssr::store::{bank, bills, commit, job_queue};
use chrono::Duration;

/// Hours after paid within which QBO must show the BillPayment.
pub const LEDGER_WINDOW_HOURS: i64 = 24;

/// Whether Ramp's accounting sync wrote this BillPayment for Ramp bill
/// `ramp_bill_id`. Ramp documents no field linking its bill to the QBO
/// BillPayment its sync writes; what the sync leaves is a memo naming the
/// Ramp bill (`PrivateNote` "Ramp bill <id> (<invoice>)", which the
/// sandbox's Ramp writes too). A bill id is a UUID: a bookkeeper's own
/// payment never names it. (The planted bug `verify_any_bill_payment`
/// takes any BillPayment, as RowCol did before issue #16: the simulation
/// must catch it.)
pub(crate) fn written_by_ramp(bp: &LedgerBillPayment, ramp_bill_id: &str) -> bool {
    if planted::active(Bug::VerifyAnyBillPayment) {
        return true;
    }
    !ramp_bill_id.is_empty()
        && bp
            .private_note
            .as_deref()
            .is_some_and(|n| n.contains(ramp_bill_id))
}

/// What verification knows about a paid payment.
struct Paid<'a> {
    payment_id: &'a str,
    client_id: String,
    amount: app::model::Money,
    paid_date: chrono::NaiveDate,
    qbo_bill_id: String,
    /// The clock when verification began: one instant for every step.
    now: chrono::DateTime<chrono::Utc>,
}

pub async fn run(st: &Services, payment_id: &str) -> Result<(), JobError> {
    let (payment, bill) = {
        let mut conn = st.db.acquire().await?;
        let payment = payments::require(&mut conn, payment_id).await?;
        let bill = bills::of_payment(&mut conn, payment_id).await?;
        (payment, bill)
    };
    if payment.state()? == PaymentState::Verified {
        // Verified, but the bank removed its evidence: look for it again.
        if payment.plaid_txn_id.is_none() {
            return super::evidence::reattach(st, &payment).await;
        }
        return Ok(());
    }
    let paid = Paid {
        payment_id,
        client_id: payment.client_id.clone(),
        amount: payment.amount()?,
        paid_date: payment
            .paid_date()?
            .ok_or_else(|| JobError::retry("not_paid", "no paid date yet"))?,
        qbo_bill_id: bill.qbo_bill_id,
        now: st.clock.now(),
    };
    let Some(recorded) = check_ledger(st, &paid, payment.ramp_bill_id.as_deref()).await? else {
        // A finding a person takes from here: retrying cannot help.
        return Ok(());
    };
    if check_bank(st, &paid, recorded).await? {
        Ok(())
    } else {
        // Evidence can lag: look again on the retry schedule.
        Err(JobError::retry(
            "evidence_pending",
            if recorded {
                "bank movement not seen yet"
            } else {
                "QBO BillPayment not seen yet"
            },
        ))
    }
}

/// Ledger: exactly one BillPayment for this bill, written by Ramp's sync,
/// of the paid amount. `Some(recorded)`: go on to the bank; `None`: a
/// discrepancy was flagged that a person must resolve.
async fn check_ledger(
    st: &Services,
    paid: &Paid<'_>,
    ramp_bill_id: Option<&str>,
) -> Result<Option<bool>, JobError> {
    let Paid {
        payment_id,
        amount,
        paid_date,
        qbo_bill_id,
        now,
        ..
    } = paid;
    let now = *now;
    let qbo = rail_auth(st, &paid.client_id, Rail::Qbo).await?;
    let payments = match st
        .rails
        .ledger
        .bill_payments_for_bill(&qbo, qbo_bill_id)
        .await
    {
        Ok(p) => p,
        // The bill is gone from the ledger (deleted after the release had
        // reached Ramp): the money left all the same. Nothing will ever
        // record it; a person must (or must recover it). Retrying cannot help.
        Err(RailError::NotFound(_)) => {
            let mut tx = st.db.begin().await?;
            flag(
                &mut tx,
                payment_id,
                ReasonCode::BillChangedInLedger,
                Severity::Critical,
                &format!(
                    "QBO bill {qbo_bill_id} was deleted in QuickBooks after this payment was \
                     released; Ramp paid {amount} on {paid_date}. Record the payment in QBO \
                     against a bill, or recover it from the vendor."
                ),
                now,
            )
            .await?;
            commit(tx).await?;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // Only the BillPayment Ramp's accounting sync wrote for this payment
    // evidences it. Any other payment of the bill (a bookkeeper paying it
    // by hand, a second Ramp bill) is a second payment of one bill: the
    // vendor may have been paid twice.
    let Some(ramp_bill_id) = ramp_bill_id else {
        // Paid is only ever learnt from Ramp naming its bill; without the
        // id no BillPayment can be told apart. Wait for it.
        return Err(JobError::retry(
            "no_ramp_bill",
            "Ramp's bill id not known yet",
        ));
    };
    let (ours, others): (Vec<_>, Vec<_>) = payments
        .iter()
        .partition(|bp| written_by_ramp(bp, ramp_bill_id));
    let mut tx = st.db.begin().await?;
    if let Some(other) = others.first() {
        flag(
            &mut tx,
            payment_id,
            ReasonCode::DuplicatePayment,
            Severity::Critical,
            &format!(
                "Bill {qbo_bill_id} was paid twice: Ramp paid {amount} on {paid_date} (Ramp bill \
                 {ramp_bill_id}), and QuickBooks also has BillPayment {} of {} on {} that Ramp \
                 did not write{}. Ask the vendor to refund one, then void the extra payment in \
                 QuickBooks.",
                other.id,
                other.amount_for_bill,
                other.txn_date,
                match others.len() {
                    1 => String::new(),
                    n => format!(" ({} more like it)", n - 1),
                },
            ),
            now,
        )
        .await?;
    }
    let recorded = match ours.as_slice() {
        // Ramp's own record cannot land on a bill already paid: the
        // duplicate is the finding; a person takes it from here.
        [] if !others.is_empty() => None,
        [] => {
            let overdue = now.date_naive() > *paid_date
                && (now - paid_date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                    > Duration::hours(LEDGER_WINDOW_HOURS);
            if overdue {
                flag(
                    &mut tx,
                    payment_id,
                    ReasonCode::QboSyncMissing,
                    Severity::Medium,
                    &format!(
                        "No QBO BillPayment for bill {qbo_bill_id} {LEDGER_WINDOW_HOURS} h after it was paid"
                    ),
                    now,
                )
                .await?;
            }
            Some(false)
        }
        [bp] if bp.amount_for_bill == *amount => {
            payments::set_ledger_record(&mut tx, payment_id, &bp.id).await?;
            payments::record_step(
                &mut tx,
                payment_id,
                Step {
                    to: PaymentState::Recorded,
                    owner: CustodyOwner::Qbo,
                    actor: "rowcol:verify",
                    evidence: format!(
                        "QBO BillPayment {} for {} on {} links bill {} (written by Ramp's sync for Ramp bill {})",
                        bp.id, bp.amount_for_bill, bp.txn_date, qbo_bill_id, ramp_bill_id
                    ),
                    at: now,
                    audit_detail: None,
                },
            )
            .await?;
            // The ledger agrees now (a bookkeeper corrected the amount, or
            // voided the extra payment): those flags clear themselves.
            clear_flag(&mut tx, payment_id, ReasonCode::QboSyncMissing, now).await?;
            clear_flag(&mut tx, payment_id, ReasonCode::AmountMismatch, now).await?;
            if others.is_empty() {
                clear_flag(&mut tx, payment_id, ReasonCode::DuplicatePayment, now).await?;
            }
            Some(true)
        }
        [bp] => {
            flag(
                &mut tx,
                payment_id,
                ReasonCode::AmountMismatch,
                Severity::Critical,
                &format!(
                    "QBO BillPayment {} records {} but {} was paid",
                    bp.id, bp.amount_for_bill, amount
                ),
                now,
            )
            .await?;
            None
        }
        many => {
            flag(
                &mut tx,
                payment_id,
                ReasonCode::DuplicatePayment,
                Severity::Critical,
                &format!(
                    "{} BillPayments in QBO record Ramp bill {ramp_bill_id} against bill {}",
                    many.len(),
                    qbo_bill_id
                ),
                now,
            )
            .await?;
            None
        }
    };
    commit(tx).await?;
    Ok(recorded)
}

/// Bank: a transaction of exactly the amount in the window around the paid
/// date (the ACH debit often precedes it), not already matched to another
/// payment. True when the payment is now verified.
async fn check_bank(st: &Services, paid: &Paid<'_>, recorded: bool) -> Result<bool, JobError> {
    let Paid {
        payment_id,
        client_id,
        amount,
        paid_date,
        now,
        ..
    } = paid;
    let now = *now;
    match super::sync::sync_transactions(st, client_id).await {
        Ok(()) => {}
        // The bank needs re-authorising (the sync job files that in the
        // hygiene tray). Dying here would leave the payment unverified and
        // unflagged for good: judge on the transactions already read
        // (flagging once past the window), and the retry looks again.
        Err(JobError::Fatal {
            code: "login_required",
            ..
        }) => {}
        Err(e) => return Err(e),
    }
    let today = now.date_naive();
    let (window_start, window_end) = matching::bank_window(*paid_date);
    let txn = {
        let mut conn = st.db.acquire().await?;
        bank::find_payment_evidence(&mut conn, client_id, amount.minor, *paid_date, payment_id)
            .await?
    };
    let mut tx = st.db.begin().await?;
    let verified = match txn {
        Some(t) if recorded => {
            payments::set_bank_evidence(&mut tx, payment_id, &t.txn_id).await?;
            payments::record_step(
                &mut tx,
                payment_id,
                Step {
                    to: PaymentState::Verified,
                    owner: CustodyOwner::Plaid,
                    actor: "rowcol:verify",
                    evidence: format!(
                        "Plaid transaction {} \"{}\" of {} on {} (strong evidence: exact amount within the window)",
                        t.txn_id, t.name, amount, t.txn_date
                    ),
                    at: now,
                    audit_detail: None,
                },
            )
            .await?;
            clear_flag(&mut tx, payment_id, ReasonCode::CashNotSeen, now).await?;
            job_queue::enqueue(
                &mut tx,
                &Job::AnnotateLedger {
                    payment_id: (*payment_id).to_owned(),
                },
                now,
                now,
            )
            .await?;
            true
        }
        // The bank shows it; the ledger does not yet. That is the ledger's
        // discrepancy (flagged above once overdue), not the bank's.
        Some(_) => false,
        None => {
            if today > window_end {
                flag(
                    &mut tx,
                    payment_id,
                    ReasonCode::CashNotSeen,
                    Severity::Medium,
                    &format!(
                        "No bank transaction of {amount} between {window_start} and {window_end}"
                    ),
                    now,
                )
                .await?;
            }
            false
        }
    };
    commit(tx).await?;
    Ok(verified)
}
