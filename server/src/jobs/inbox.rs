//! Process a stored webhook (Plaid's in `plaid_events`, QBO's in
//! `qbo_events`). Ramp's payloads are
//! thin, so the bill is re-read from Ramp; an event never moves a payment
//! backwards.

use super::JobError;
use crate::connections::rail_auth;
use crate::rails::RampBillStatus;
use crate::services::Services;
use app::domain::custody::PaymentState;
use app::model::{CustodyOwner, Rail};
use app::ssr::job_kinds::Job;
use app::ssr::store::payments::{self, Step};
use app::ssr::store::{commit, connections, inbox, job_queue};
use serde_json::Value;

pub async fn run(st: &Services, inbox_id: &str) -> Result<(), JobError> {
    let event = {
        let mut conn = st.db.acquire().await?;
        inbox::get(&mut conn, inbox_id)
            .await?
            .ok_or_else(|| JobError::fatal("not_found", "inbox row vanished"))?
    };
    if !event.is_pending() {
        return Ok(());
    }
    let body: Value = serde_json::from_str(&event.body)
        .map_err(|e| JobError::fatal("malformed", e.to_string()))?;
    let outcome = match (Rail::parse(&event.rail), event.event_type.as_str()) {
        (Some(Rail::Plaid), kind) => super::plaid_events::process(st, kind, &body).await?,
        (Some(Rail::Qbo), _) => super::qbo_events::process(st, &body).await?,
        // Kept, verified and de-duplicated; RowCol reads nothing from Stripe
        // yet beyond the account's name (receivables, issue #20, will).
        (Some(Rail::Stripe), kind) => format!("kept: {kind} (receivables do not read it yet)"),
        (_, "bills.paid") => bill_paid(st, &event.event_id, &body).await?,
        (_, "webhooks.verification") => super::subscriptions::verify(st, &body).await?,
        (_, other) => format!("ignored: {other} is not handled"),
    };
    let mut conn = st.db.acquire().await?;
    let now = st.clock.now();
    inbox::mark_processed(&mut conn, inbox_id, now).await?;
    // On the one clock both instants were read from (the sandbox's jumps
    // between them would show here as a slow event).
    st.metrics.webhook_processed(
        &event.rail,
        (now - app::ssr::store::from_ms(event.received_at))
            .to_std()
            .unwrap_or_default(),
    );
    tracing::info!(
        event_id = event.event_id,
        event_type = event.event_type,
        outcome,
        "webhook processed"
    );
    Ok(())
}

async fn bill_paid(st: &Services, event_id: &str, body: &Value) -> Result<String, JobError> {
    let business = body
        .get("business_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bill_id = body
        .pointer("/object/id")
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::fatal("malformed", "bills.paid without object.id"))?;
    // Which client's Ramp business is this? Then which payment?
    let found = {
        let mut conn = st.db.acquire().await?;
        payments::find_by_ramp_bill(&mut conn, business, bill_id).await?
    };
    let Some((payment_id, client_id)) = found else {
        // Paid before our release recorded the bill id (early event), or a
        // bill RowCol did not create. Re-read by remote_id below if possible.
        return early_or_foreign(st, event_id, business, bill_id).await;
    };
    apply_paid(st, event_id, &payment_id, &client_id, bill_id).await
}

/// The event arrived before the release job stored Ramp's bill id: read the
/// bill, and if its `remote_id` is one of our payments, take it from there.
async fn early_or_foreign(
    st: &Services,
    event_id: &str,
    business: &str,
    bill_id: &str,
) -> Result<String, JobError> {
    let client = {
        let mut conn = st.db.acquire().await?;
        connections::client_for_account(&mut conn, Rail::Ramp, business).await?
    };
    let Some(client_id) = client else {
        return Ok(format!("ignored: unknown Ramp business {business}"));
    };
    let auth = rail_auth(st, &client_id, Rail::Ramp).await?;
    let bill = st.rails.bill_pay.get_bill(&auth, bill_id).await?;
    let Some(remote) = bill.remote_id else {
        return Ok("ignored: bill not created by RowCol".into());
    };
    {
        let mut conn = st.db.acquire().await?;
        if !payments::belongs_to_client(&mut conn, &remote, &client_id).await? {
            return Ok("ignored: remote_id is not a RowCol payment".into());
        }
        payments::attach_ramp_bill(&mut conn, &remote, bill_id).await?;
    }
    apply_paid(st, event_id, &remote, &client_id, bill_id).await
}

async fn apply_paid(
    st: &Services,
    event_id: &str,
    payment_id: &str,
    client_id: &str,
    bill_id: &str,
) -> Result<String, JobError> {
    let auth = rail_auth(st, client_id, Rail::Ramp).await?;
    let bill = st.rails.bill_pay.get_bill(&auth, bill_id).await?;
    if bill.status != RampBillStatus::Paid {
        return Err(JobError::retry(
            "not_paid_yet",
            "Ramp does not show the bill paid yet",
        ));
    }
    let now = st.clock.now();
    let paid_date = bill
        .payment_date
        .or(bill.paid_at.map(|t| t.date_naive()))
        .unwrap_or(now.date_naive());
    let polled = event_id == "poll";
    let actor = if polled {
        "rowcol:reconciler".to_owned()
    } else {
        format!("ramp:event:{event_id}")
    };
    let mut tx = st.db.begin().await?;
    payments::set_paid_date(&mut tx, payment_id, paid_date).await?;
    let outcome = payments::record_step(
        &mut tx,
        payment_id,
        Step {
            to: PaymentState::Paid,
            owner: CustodyOwner::Ramp,
            actor: &actor,
            evidence: format!(
                "{}; Ramp bill {bill_id} PAID {} on {paid_date}{}",
                if polled {
                    "no webhook: found paid by polling Ramp".to_owned()
                } else {
                    format!("bills.paid {event_id}")
                },
                bill.amount,
                bill.trace_id
                    .as_deref()
                    .map(|t| format!(", trace {t}"))
                    .unwrap_or_default()
            ),
            at: now,
            audit_detail: None,
        },
    )
    .await?;
    job_queue::enqueue(
        &mut tx,
        &Job::VerifyPayment {
            payment_id: payment_id.to_owned(),
        },
        now,
        now,
    )
    .await?;
    commit(tx).await?;
    Ok(if outcome.is_new() {
        "payment marked paid".into()
    } else {
        "already paid".into()
    })
}

/// The reconciler for ACH returns Ramp shows: a payment Ramp paid in the
/// last [`super::evidence::RETURN_WATCH_BUSINESS_DAYS`] business days whose
/// bill is OPEN again fails (see [`super::evidence::ramp_unpaid_again`]).
/// The bank shows a return too (`evidence::ach_return`); this catches it
/// when the bank cannot be read. Returns how many failed.
pub async fn reconcile_paid(st: &Services) -> Result<usize, JobError> {
    let since = app::domain::calendar::sub_business_days(
        st.clock.today(),
        super::evidence::RETURN_WATCH_BUSINESS_DAYS,
    );
    let recent = {
        let mut conn = st.db.acquire().await?;
        payments::paid_since(&mut conn, since, 200).await?
    };
    let mut failed = 0;
    for (client_id, group, open) in listed_by_client(st, recent, RampBillStatus::Open).await {
        // A bill OPEN again is read once more on its own before its
        // payment fails (`ramp_unpaid_again`): rare, and worth being sure.
        for w in group.iter().filter(|w| open.contains(&w.ramp_bill_id)) {
            match super::evidence::ramp_unpaid_again(st, &w.payment_id, &client_id, &w.ramp_bill_id)
                .await
            {
                Ok(true) => failed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(payment = %w.payment_id, error = %e, "return check failed")
                }
            }
        }
    }
    Ok(failed)
}

/// The watched payments by client, each client's with the ids of its Ramp
/// bills now in `status`: one list per client (its bills in that status
/// created since the oldest watched payment was approved), not one read
/// per payment (issue #19 §1). Clients come in the order of their first
/// payment, an order that does not depend on random ids (a replayed
/// simulation sends the same calls); a client whose list fails is left for
/// the next sweep.
async fn listed_by_client(
    st: &Services,
    watched: Vec<payments::Watched>,
    status: RampBillStatus,
) -> Vec<(
    String,
    Vec<payments::Watched>,
    std::collections::HashSet<String>,
)> {
    let mut clients: Vec<(String, Vec<payments::Watched>)> = Vec::new();
    for w in watched {
        match clients.iter_mut().find(|(c, _)| *c == w.client_id) {
            Some((_, group)) => group.push(w),
            None => clients.push((w.client_id.clone(), vec![w])),
        }
    }
    let mut out = Vec::with_capacity(clients.len());
    for (client_id, group) in clients {
        let oldest = group.iter().map(|w| w.created_at).min().unwrap_or(0);
        // A margin for the rail's clock against ours.
        let created_since = app::ssr::store::from_ms(oldest) - chrono::Duration::hours(1);
        let listed = async {
            let auth = rail_auth(st, &client_id, Rail::Ramp).await?;
            let bills = st
                .rails
                .bill_pay
                .bills_in_status(&auth, status, created_since)
                .await?;
            Ok::<_, JobError>(bills)
        }
        .await;
        match listed {
            Ok(bills) => out.push((client_id, group, bills.into_iter().map(|b| b.id).collect())),
            Err(e) => tracing::warn!(client = %client_id, error = %e, "listing Ramp bills failed"),
        }
    }
    out
}

/// The reconciler for missed webhooks: every released payment whose arrival
/// date has come is re-read on Ramp; a bill Ramp shows paid moves to `paid`
/// exactly as the webhook would have moved it. Returns how many moved.
pub async fn reconcile_released(st: &Services) -> Result<usize, JobError> {
    let due = {
        let mut conn = st.db.acquire().await?;
        payments::released_and_due(&mut conn, st.clock.today(), 200).await?
    };
    let mut moved = 0;
    for (client_id, group, paid) in listed_by_client(st, due, RampBillStatus::Paid).await {
        // Each bill the list shows paid is read on its own once (the trace
        // id Ramp returns only there); the rest wait for the next sweep.
        for w in group.iter().filter(|w| paid.contains(&w.ramp_bill_id)) {
            match apply_paid(st, "poll", &w.payment_id, &client_id, &w.ramp_bill_id).await {
                Ok(_) => moved += 1,
                Err(JobError::Retry {
                    code: "not_paid_yet",
                    ..
                }) => {}
                Err(e) => tracing::warn!(payment = %w.payment_id, error = %e, "reconcile failed"),
            }
        }
    }
    Ok(moved)
}
