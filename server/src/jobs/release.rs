//! Release an approved payment on Ramp: create the bill through the API with
//! RowCol's payment id as `remote_id`, so a retry (after a timeout, a 5xx, a
//! crash) can never create a second payment.

use super::JobError;
use crate::connections::rail_auth;
use crate::rails::CreateBill;
use crate::services::Services;
use app::domain::calendar::payment_arrival_date;
use app::domain::custody::PaymentState;
use app::model::{CustodyOwner, Rail};
use app::ssr::store::connections::RampPayee;
use app::ssr::store::payments::{self, Step};
use app::ssr::store::{bills, commit, connections};

pub async fn run(st: &Services, payment_id: &str) -> Result<(), JobError> {
    let (payment, bill) = {
        let mut conn = st.db.acquire().await?;
        let payment = payments::require(&mut conn, payment_id).await?;
        let bill = bills::of_payment(&mut conn, payment_id).await?;
        (payment, bill)
    };
    if payment.state()? != PaymentState::Approved {
        // Already released (or further): the job is a no-op.
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
    let created = st.rails.bill_pay.create_bill(&auth, &req).await?;

    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    payments::set_released_bill(&mut tx, payment_id, &created.id, req.payment_arrival_date).await?;
    payments::record_step(
        &mut tx,
        payment_id,
        Step {
            to: PaymentState::Released,
            owner: CustodyOwner::Ramp,
            actor: "rowcol:release",
            evidence: format!(
                "Ramp bill {} created (remote_id {}), approval {}, ACH arriving {}",
                created.id,
                payment_id,
                created.approval_status.as_deref().unwrap_or("unknown"),
                req.payment_arrival_date
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
