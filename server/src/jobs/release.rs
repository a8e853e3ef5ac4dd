//! Release an approved payment on Ramp, exactly once against the Ramp that
//! is documented. RowCol's payment id travels as the bill's `remote_id`, but
//! Ramp does not de-duplicate on it: a create repeated after a lost response
//! would pay twice. So each attempt:
//!
//! 1. If a create was attempted before (`ramp_create_attempted_at`), looks
//!    for a Ramp bill carrying this `remote_id` and adopts it. Finding none
//!    proves nothing while Ramp's list may still lag the create
//!    ([`RAMP_LIST_SETTLE`]): the job retries later instead of creating.
//! 2. Re-reads the bill from QuickBooks and releases only if it is still
//!    open with the same vendor and a balance equal to the payment's amount;
//!    otherwise the payment is `cancelled` with the reason, the hygiene tray
//!    says why, and the bill's current version can be approved again.
//! 3. Records (committed) that a create is about to be sent, then sends it.

use super::JobError;
use crate::connections::rail_auth;
use crate::rails::{BillLookup, CreateBill, LedgerBill, RampBill};
use crate::services::Services;
use app::domain::calendar::payment_arrival_date;
use app::domain::custody::PaymentState;
use app::model::{CustodyOwner, Rail, ReasonCode, Severity};
use app::ssr::planted::{self, Bug};
use app::ssr::store::bills::{self, BillOfPayment};
use app::ssr::store::connections::RampPayee;
use app::ssr::store::hygiene;
use app::ssr::store::payments::{self, PaymentRow, Step};
use app::ssr::store::{commit, connections};
use chrono::NaiveDate;
use std::time::Duration;

/// How long after a create Ramp's bills list may still not show the bill.
/// Ramp documents no bound; a few seconds is what is seen, and a release
/// that waits two minutes more costs nothing. Until this has passed since
/// the last attempted create, not finding the bill does not mean there is
/// none.
pub const RAMP_LIST_SETTLE: Duration = Duration::from_secs(120);

/// How far before the last attempted create the look-up searches: the two
/// sides' clocks may disagree, and an earlier attempt may have created it.
const LOOKUP_MARGIN: chrono::Duration = chrono::Duration::days(1);

pub async fn run(st: &Services, payment_id: &str) -> Result<(), JobError> {
    let (payment, bill, attempted) = {
        let mut conn = st.db.acquire().await?;
        let payment = payments::require(&mut conn, payment_id).await?;
        let bill = bills::of_payment(&mut conn, payment_id).await?;
        let attempted = payments::create_attempted_at(&mut conn, payment_id).await?;
        (payment, bill, attempted)
    };
    if payment.state()? != PaymentState::Approved && !planted::active(Bug::NoStateGuard) {
        // Already released, cancelled (or further): the job is a no-op.
        return Ok(());
    }
    let client_id = payment.client_id.as_str();
    let auth = rail_auth(st, client_id, Rail::Ramp).await?;

    // Entity, bank account and vendor mapping come from the Ramp sync; fetch
    // them now if the sync has not run yet.
    let payee = match load_payee(st, client_id, &bill.qbo_vendor_id).await? {
        Some(p) => p,
        None => {
            super::sync::sync_ramp_setup(st, client_id, &auth).await?;
            load_payee(st, client_id, &bill.qbo_vendor_id)
                .await?
                .ok_or_else(|| {
                    JobError::fatal(
                        "vendor_unmapped",
                        format!("vendor {} has no Ramp vendor", bill.qbo_vendor_id),
                    )
                })?
        }
    };

    // 1. A create may already have reached Ramp: look before anything else.
    let attempted = attempted.filter(|_| !planted::active(Bug::NoRemoteIdLookup));
    if let Some(at) = attempted {
        let look = BillLookup {
            entity_id: payee.entity_id.clone(),
            vendor_id: payee.ramp_vendor_id.clone(),
            remote_id: payment_id.to_owned(),
            created_since: at - LOOKUP_MARGIN,
        };
        let found = st.rails.bill_pay.bills_with_remote_id(&auth, &look).await?;
        if let Some(existing) = found.first() {
            // Adopt what is there; a bill found this way was created by an
            // earlier attempt whose answer never arrived.
            // The date that create asked for is not in Ramp's answer; it was
            // computed the same way, moments ago.
            let arrival = payment_arrival_date(payment.arrival_date()?, st.clock.today());
            let how = format!(
                "found by remote_id after an unanswered create ({} found)",
                found.len()
            );
            return released(st, payment_id, existing, arrival, &how).await;
        }
        let waited = (st.clock.now() - at).to_std().unwrap_or_default();
        if waited < RAMP_LIST_SETTLE {
            return Err(JobError::Retry {
                code: "ramp_list_settling",
                message: format!(
                    "no Ramp bill with remote_id {payment_id} yet; the create {}s ago may still be on its way",
                    waited.as_secs()
                ),
                after: Some(RAMP_LIST_SETTLE - waited),
            });
        }
        // Settled and absent: the earlier create never made a bill.
    }

    // 2. The ledger may have moved since approval.
    let qbo = rail_auth(st, client_id, Rail::Qbo).await?;
    let fresh = st.rails.ledger.get_bill(&qbo, &bill.qbo_bill_id).await?;
    if let Some(why) = ledger_change(&payment, &bill, fresh.as_ref())? {
        return cancel(st, &payment, &bill, fresh.as_ref(), &why).await;
    }

    // 3. The vendor's bank account may have changed on Ramp since a person
    // accepted it. A changed payee account is the classic invoice fraud:
    // hold the payment for a second look rather than pay an account nobody
    // here has confirmed. Read fresh, not from the last sync.
    let current = st
        .rails
        .bill_pay
        .vendor_ach_account(&auth, &payee.ramp_vendor_id)
        .await?
        .ok_or_else(|| {
            JobError::fatal(
                "vendor_without_account",
                format!(
                    "Ramp vendor {} has no ACH bank account to pay",
                    payee.ramp_vendor_id
                ),
            )
        })?;
    if current != payee.vendor_account_id {
        return hold_for_bank_change(st, &payment, &bill, &payee.ramp_vendor_id, &current).await;
    }

    // 4. Remember the attempt before it can reach Ramp, then create.
    let req = CreateBill {
        remote_id: payment_id.to_owned(),
        entity_id: payee.entity_id,
        vendor_id: payee.ramp_vendor_id,
        vendor_contact_id: payee.contact_id,
        invoice_number: bill
            .doc_number
            .clone()
            .unwrap_or_else(|| format!("QBO-{}", bill.qbo_bill_id)),
        issued_at: bill.issued()?,
        due_at: bill.due()?,
        amount: payment.amount()?,
        memo: Some(format!("RowCol payment {payment_id}")),
        // A release delayed by retries (or a queue that waited) may find the
        // planned arrival date already too close: move it to the earliest
        // date ACH can still make, never earlier than planned.
        payment_arrival_date: payment_arrival_date(payment.arrival_date()?, st.clock.today()),
        source_bank_account_id: payee.source_bank_account_id,
        vendor_account_id: payee.vendor_account_id,
    };
    let marked_at = st.clock.now();
    {
        let mut conn = st.db.acquire().await?;
        payments::set_create_attempted(&mut conn, payment_id, marked_at).await?;
    }
    let created = match st.rails.bill_pay.create_bill(&auth, &req).await {
        Ok(created) => created,
        Err(e) => {
            if e.is_refusal() {
                // Ramp answered and made nothing: no create is outstanding,
                // so if the release gives up the payment can safely fail.
                let mut conn = st.db.acquire().await?;
                payments::clear_create_attempted(&mut conn, payment_id, marked_at).await?;
            }
            return Err(e.into());
        }
    };
    released(
        st,
        payment_id,
        &created,
        req.payment_arrival_date,
        "created",
    )
    .await
}

/// Why the bill as the ledger has it now may not be paid by this payment,
/// if it may not.
fn ledger_change(
    payment: &PaymentRow,
    bill: &BillOfPayment,
    fresh: Option<&LedgerBill>,
) -> Result<Option<String>, JobError> {
    let amount = payment.amount()?;
    let Some(now) = fresh else {
        return Ok(Some(format!(
            "QBO bill {} was deleted in QuickBooks",
            bill.qbo_bill_id
        )));
    };
    Ok(if now.balance.minor <= 0 {
        Some(format!(
            "QBO bill {} is already paid in QuickBooks (balance 0)",
            bill.qbo_bill_id
        ))
    } else if now.vendor_id != bill.qbo_vendor_id {
        Some(format!(
            "QBO bill {}'s vendor changed in QuickBooks from {} to {} ({})",
            bill.qbo_bill_id, bill.qbo_vendor_id, now.vendor_id, now.vendor_name
        ))
    } else if now.balance != amount {
        Some(format!(
            "QBO bill {}'s open balance is now {} {}, the approved payment is {} {}",
            bill.qbo_bill_id,
            now.balance.to_decimal_string(),
            now.balance.currency.as_str(),
            amount.to_decimal_string(),
            amount.currency.as_str()
        ))
    } else {
        None
    })
}

/// The payment stays approved (its cash committed, nothing sent to Ramp),
/// flagged, with a hygiene item naming both accounts; confirming it in the
/// tray accepts the new account and queues the release again.
async fn hold_for_bank_change(
    st: &Services,
    payment: &PaymentRow,
    bill: &BillOfPayment,
    ramp_vendor_id: &str,
    seen: &str,
) -> Result<(), JobError> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    let accepted =
        connections::note_vendor_account(&mut tx, &payment.client_id, ramp_vendor_id, Some(seen))
            .await?;
    payments::flag(
        &mut tx,
        &payment.payment_id,
        ReasonCode::VendorBankChanged,
        Severity::High,
        &format!(
            "Held before release: the bank account Ramp would pay for {} changed (accepted: {}; \
             now: {seen}). Confirm the change with the vendor on a number you already have, \
             not one from the request, then confirm here to release; or leave it held.",
            bill.vendor_name,
            accepted.as_deref().unwrap_or("none"),
        ),
        now,
    )
    .await?;
    commit(tx).await?;
    tracing::warn!(
        payment = payment.payment_id.as_str(),
        vendor = ramp_vendor_id,
        "release held: the vendor's bank account changed"
    );
    Ok(())
}

/// The payment ends `cancelled` (no Ramp bill was made); its commitment goes
/// with it, the hygiene tray says why, and the staged bill takes the
/// ledger's current version so it can be approved again if still open.
async fn cancel(
    st: &Services,
    payment: &PaymentRow,
    bill: &BillOfPayment,
    fresh: Option<&LedgerBill>,
    why: &str,
) -> Result<(), JobError> {
    let now = st.clock.now();
    let payment_id = payment.payment_id.as_str();
    let mut tx = st.db.begin().await?;
    let outcome = payments::record_step(
        &mut tx,
        payment_id,
        Step {
            to: PaymentState::Cancelled,
            owner: CustodyOwner::RowCol,
            actor: "rowcol:release",
            evidence: format!("Not released: {why}"),
            at: now,
            audit_detail: Some(serde_json::json!({
                "reason": ReasonCode::BillChangedInLedger.as_str(),
            })),
        },
    )
    .await?;
    if outcome.is_new() {
        hygiene::file(
            &mut tx,
            hygiene::NewItem {
                firm_id: &payment.firm_id,
                client_id: Some(&payment.client_id),
                payment_id: Some(payment_id),
                severity: Severity::High,
                reason_code: ReasonCode::BillChangedInLedger,
                detail: &format!("Payment cancelled before release: {why}"),
                at: now,
                job_id: None,
                opened_by: None,
            },
        )
        .await?;
        match fresh {
            Some(b) if b.balance.minor > 0 => {
                bills::upsert_open(
                    &mut tx,
                    &payment.firm_id,
                    &payment.client_id,
                    &super::sync::staged(b),
                    now,
                )
                .await?
            }
            _ => bills::close_one(&mut tx, &payment.client_id, &bill.qbo_bill_id, now).await?,
        }
    }
    commit(tx).await?;
    Ok(())
}

/// Ramp holds the bill: record its id and the release.
async fn released(
    st: &Services,
    payment_id: &str,
    ramp: &RampBill,
    arrival: NaiveDate,
    how: &str,
) -> Result<(), JobError> {
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    payments::set_released_bill(&mut tx, payment_id, &ramp.id, arrival).await?;
    payments::record_step(
        &mut tx,
        payment_id,
        Step {
            to: PaymentState::Released,
            owner: CustodyOwner::Ramp,
            actor: "rowcol:release",
            evidence: format!(
                "Ramp bill {} {how} (remote_id {payment_id}), approval {}, ACH arriving {arrival}",
                ramp.id,
                ramp.approval_status.as_deref().unwrap_or("unknown"),
            ),
            at: now,
            audit_detail: None,
        },
    )
    .await?;
    commit(tx).await?;
    Ok(())
}

/// A Ramp payee with every part known.
struct Payee {
    entity_id: String,
    source_bank_account_id: String,
    ramp_vendor_id: String,
    contact_id: String,
    vendor_account_id: String,
}

async fn load_payee(
    st: &Services,
    client_id: &str,
    qbo_vendor_id: &str,
) -> Result<Option<Payee>, JobError> {
    let mut conn = st.db.acquire().await?;
    let Some(RampPayee {
        entity_id: Some(entity_id),
        source_bank_account_id: Some(source_bank_account_id),
        ramp_vendor_id,
        ramp_contact_id: Some(contact_id),
        ramp_vendor_account_id: Some(vendor_account_id),
    }) = connections::ramp_payee(&mut conn, client_id, qbo_vendor_id).await?
    else {
        return Ok(None);
    };
    Ok(Some(Payee {
        entity_id,
        source_bank_account_id,
        ramp_vendor_id,
        contact_id,
        vendor_account_id,
    }))
}
